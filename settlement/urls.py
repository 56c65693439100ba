from django.urls import path

from settlement import api, views

api_urlpatterns: list = [
    path("settlement/bookings/<int:booking_id>/movements/", api.BookingMovementsApi.as_view(),
         name="api-booking-movements"),
    path("payouts/", api.PayoutListApi.as_view(), name="api-payout-list"),
    path("payouts/<int:pk>/", api.PayoutDetailApi.as_view(), name="api-payout-detail"),
    path("payouts/<int:pk>/mark-paid/", api.PayoutMarkPaidApi.as_view(), name="api-payout-mark-paid"),
    path("reimbursement-claims/", api.ClaimListApi.as_view(), name="api-claim-list"),
    path("reimbursement-claims/<int:pk>/mark-paid/", api.ClaimMarkPaidApi.as_view(), name="api-claim-mark-paid"),
]
urlpatterns: list = [
    path("settlement/bookings/<int:booking_id>/", views.booking_progress, name="booking-progress"),
    path("payouts/", views.payout_list, name="payout-list"),
    path("claims/", views.claim_list, name="claim-list"),
    path("claims/<int:pk>/mark-paid/", views.claim_mark_paid, name="claim-mark-paid"),
]
