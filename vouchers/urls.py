from django.urls import path

from vouchers import api, views

api_urlpatterns = [
    path("voucher-programs/", api.ProgramListCreateView.as_view(), name="api-voucher-programs"),
    path("voucher-programs/<int:pk>/", api.ProgramDetailView.as_view(), name="api-voucher-program"),
    path(
        "voucher-programs/<int:pk>/applications/", api.ApplicationCreateView.as_view(), name="api-voucher-program-apply"
    ),
    path("voucher-applications/", api.ApplicationListView.as_view(), name="api-voucher-applications"),
    path(
        "voucher-applications/<int:pk>/approve/",
        api.ApplicationApproveView.as_view(),
        name="api-voucher-application-approve",
    ),
    path(
        "voucher-applications/<int:pk>/reject/",
        api.ApplicationRejectView.as_view(),
        name="api-voucher-application-reject",
    ),
    path("vouchers/", api.VoucherListView.as_view(), name="api-vouchers"),
    path("vouchers/<int:pk>/", api.VoucherDetailView.as_view(), name="api-voucher"),
]

urlpatterns = [
    path("vouchers/", views.voucher_list, name="voucher-list"),
    path("vouchers/<int:pk>/", views.voucher_detail, name="voucher-detail"),
    path("vouchers/programs/", views.program_list, name="voucher-program-list"),
    path("vouchers/programs/new/", views.program_new, name="voucher-program-new"),
    path("vouchers/programs/<int:pk>/edit/", views.program_edit, name="voucher-program-edit"),
    path("vouchers/programs/<int:pk>/", views.program_detail, name="voucher-program-detail"),
    path("vouchers/programs/<int:pk>/apply/", views.program_apply, name="voucher-program-apply"),
    path("vouchers/applications/", views.application_queue, name="voucher-application-queue"),
    path("vouchers/applications/<int:pk>/approve/", views.application_approve, name="voucher-application-approve"),
    path("vouchers/applications/<int:pk>/reject/", views.application_reject, name="voucher-application-reject"),
]
