from django.urls import path

from settlement import api, views

api_urlpatterns: list = [
    path(
        "settlement/bookings/<int:booking_id>/movements/",
        api.BookingMovementsApi.as_view(),
        name="api-booking-movements",
    ),
    path("payouts/", api.PayoutListApi.as_view(), name="api-payout-list"),
    path("payouts/<int:pk>/", api.PayoutDetailApi.as_view(), name="api-payout-detail"),
    path("payouts/<int:pk>/mark-paid/", api.PayoutMarkPaidApi.as_view(), name="api-payout-mark-paid"),
    path("reimbursement-claims/", api.ClaimListApi.as_view(), name="api-claim-list"),
    path("reimbursement-claims/<int:pk>/mark-paid/", api.ClaimMarkPaidApi.as_view(), name="api-claim-mark-paid"),
    path("statements/", api.StatementListApi.as_view(), name="api-statement-list"),
    path("statements/<int:pk>/", api.StatementDetailApi.as_view(), name="api-statement-detail"),
    path("statements/<int:pk>/pay/", api.StatementPayApi.as_view(), name="api-statement-pay"),
]
urlpatterns: list = [
    path("settlement/bookings/<int:booking_id>/", views.booking_progress, name="booking-progress"),
    path("payouts/", views.payout_list, name="payout-list"),
    path("payouts/<int:pk>/mark-paid/", views.payout_mark_paid, name="payout-mark-paid"),
    path("claims/", views.claim_list, name="claim-list"),
    path("claims/<int:pk>/mark-paid/", views.claim_mark_paid, name="claim-mark-paid"),
    path("statements/", views.statement_list, name="statement-list"),
    path("statements/<int:pk>/", views.statement_detail, name="statement-detail"),
    path("statements/<int:pk>/lines.csv", views.statement_csv, name="statement-csv"),
    path("statements/<int:pk>/pay/", views.statement_pay, name="statement-pay"),
]
