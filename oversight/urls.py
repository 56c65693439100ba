from django.urls import path

from oversight import api, views

api_urlpatterns = [
    path("audit/events/", api.EventListView.as_view(), name="api-audit-events"),
    path("audit/spend/", api.SpendView.as_view(), name="api-audit-spend"),
    path("audit/spend.csv", api.SpendCsvView.as_view(), name="api-audit-spend-csv"),
    path("audit/flags/", api.FlagListView.as_view(), name="api-audit-flags"),
    path("audit/flags/<int:pk>/review/", api.FlagReviewView.as_view(), name="api-audit-flag-review"),
]

urlpatterns = [
    path("audit/", views.dashboard, name="audit-dashboard"),
    path("audit/spend.csv", views.spend_csv, name="audit-spend-csv"),
    path("audit/flags/", views.flag_queue, name="audit-flags"),
    path("audit/flags/<int:pk>/review/", views.flag_review, name="audit-flag-review"),
    path("audit/events/", views.event_log, name="audit-events"),
]
