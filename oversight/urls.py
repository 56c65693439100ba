from django.urls import path

from oversight import api, views

api_urlpatterns = [
    path("audit/events/", api.EventListApi.as_view(), name="api-audit-events"),
    path("audit/spend/", api.SpendApi.as_view(), name="api-audit-spend"),
    path("audit/spend.csv", api.SpendCsvApi.as_view(), name="api-audit-spend-csv"),
    path("audit/flags/", api.FlagListApi.as_view(), name="api-audit-flags"),
    path("audit/flags/<int:pk>/review/", api.FlagReviewApi.as_view(), name="api-audit-flag-review"),
    path("audit/tree-head/", api.TreeHeadApi.as_view(), name="api-audit-tree-head"),
    path("audit/tree-heads/", api.TreeHeadListApi.as_view(), name="api-audit-tree-heads"),
    path("audit/public-key/", api.PublicKeyApi.as_view(), name="api-audit-public-key"),
    path("audit/public-keys/", api.PublicKeyListApi.as_view(), name="api-audit-public-keys"),
    path("audit/events/<int:pk>/proof/", api.InclusionProofApi.as_view(), name="api-audit-event-proof"),
    path("audit/consistency/", api.ConsistencyProofApi.as_view(), name="api-audit-consistency"),
    path("audit/export.json", api.AuditExportApi.as_view(), name="api-audit-export"),
    path("market/idle-capacity/", api.IdleCapacityApi.as_view(), name="api-market-idle-capacity"),
]

urlpatterns = [
    path("audit/", views.dashboard, name="audit-dashboard"),
    path("audit/spend.csv", views.spend_csv, name="audit-spend-csv"),
    path("audit/flags/", views.flag_queue, name="audit-flags"),
    path("audit/flags/<int:pk>/review/", views.flag_review, name="audit-flag-review"),
    path("audit/events/", views.event_log, name="audit-events"),
    path("market/idle-capacity/", views.idle_capacity, name="market-idle-capacity"),
]
