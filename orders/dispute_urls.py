"""URLs of booking disputes (API), included through ``orders.delivery_api_urls``, and their pages, included
through ``orders.delivery_urls``."""

from django.urls import path

from orders import dispute_api, dispute_views

api_urlpatterns = [
    path("bookings/<int:pk>/dispute/", dispute_api.BookingDisputeApi.as_view(), name="api-booking-dispute"),
    path("disputes/", dispute_api.DisputeListApi.as_view(), name="api-disputes"),
    path("disputes/<int:pk>/resolve/", dispute_api.DisputeResolveApi.as_view(), name="api-dispute-resolve"),
]

urlpatterns = [
    path("bookings/<int:pk>/dispute/", dispute_views.booking_dispute, name="booking-dispute"),
    path("staff/disputes/", dispute_views.dispute_list, name="staff-disputes"),
    path("staff/disputes/<int:pk>/resolve/", dispute_views.dispute_resolve, name="staff-dispute-resolve"),
]
