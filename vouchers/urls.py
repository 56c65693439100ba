from django.urls import path

from vouchers import api, views

api_urlpatterns = [
    path("voucher-programs/", api.ProgramListCreateApi.as_view(), name="api-voucher-programs"),
    path("voucher-programs/<int:pk>/", api.ProgramDetailApi.as_view(), name="api-voucher-program"),
    path(
        "voucher-programs/<int:pk>/applications/", api.ApplicationCreateApi.as_view(), name="api-voucher-program-apply"
    ),
    path("voucher-applications/", api.ApplicationListApi.as_view(), name="api-voucher-applications"),
    path(
        "voucher-applications/<int:pk>/approve/",
        api.ApplicationApproveApi.as_view(),
        name="api-voucher-application-approve",
    ),
    path(
        "voucher-applications/<int:pk>/reject/",
        api.ApplicationRejectApi.as_view(),
        name="api-voucher-application-reject",
    ),
    path("vouchers/", api.VoucherListApi.as_view(), name="api-vouchers"),
    path("vouchers/<int:pk>/", api.VoucherDetailApi.as_view(), name="api-voucher"),
    path("vouchers/<int:pk>/revoke/", api.VoucherRevokeApi.as_view(), name="api-voucher-revoke"),
]

urlpatterns = [
    path("vouchers/", views.voucher_list, name="voucher-list"),
    path("vouchers/<int:pk>/", views.voucher_detail, name="voucher-detail"),
    path("vouchers/programs/", views.program_list, name="voucher-program-list"),
    path("vouchers/programs/new/", views.program_new, name="voucher-program-new"),
    path("vouchers/programs/new/preview/", views.program_new_preview, name="voucher-program-new-preview"),
    path("vouchers/programs/<int:pk>/edit/", views.program_edit, name="voucher-program-edit"),
    path("vouchers/programs/<int:pk>/preview/", views.program_edit_preview, name="voucher-program-edit-preview"),
    path("vouchers/programs/<int:pk>/", views.program_detail, name="voucher-program-detail"),
    path("vouchers/programs/<int:pk>/apply/", views.program_apply, name="voucher-program-apply"),
    path("vouchers/applications/", views.application_queue, name="voucher-application-queue"),
    path("vouchers/applications/<int:pk>/", views.application_detail, name="voucher-application-detail"),
    path("vouchers/applications/<int:pk>/approve/", views.application_approve, name="voucher-application-approve"),
    path("vouchers/applications/<int:pk>/reject/", views.application_reject, name="voucher-application-reject"),
]
