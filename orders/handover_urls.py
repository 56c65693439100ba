"""URLs of a booking's delivery: the agent's handovers, a booking's access and incidents, staff's review of reported
incidents (API), and the pages: the form that reports an incident and the staff page that decides on them. Included
through ``orders.delivery_api_urls`` and ``orders.delivery_urls``."""

from django.urls import path

from orders import handover_api, handover_views

api_urlpatterns = [
    path("agent/handovers/", handover_api.AgentHandoverListApi.as_view(), name="api-agent-handovers"),
    path(
        "agent/handovers/<int:pk>/report/",
        handover_api.AgentHandoverReportApi.as_view(),
        name="api-agent-handover-report",
    ),
    path("bookings/<int:pk>/access/", handover_api.BookingAccessApi.as_view(), name="api-booking-access"),
    path(
        "bookings/<int:pk>/incidents/",
        handover_api.BookingIncidentListCreateApi.as_view(),
        name="api-booking-incidents",
    ),
    path("incidents/", handover_api.IncidentListApi.as_view(), name="api-incidents"),
    path("incidents/<int:pk>/resolve/", handover_api.IncidentResolveApi.as_view(), name="api-incident-resolve"),
]

urlpatterns = [
    path("bookings/<int:pk>/incidents/report/", handover_views.incident_report, name="booking-incident-report"),
    path("staff/incidents/", handover_views.incident_list, name="staff-incidents"),
    path("staff/incidents/<int:pk>/resolve/", handover_views.incident_resolve, name="staff-incident-resolve"),
]
