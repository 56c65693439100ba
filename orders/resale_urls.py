"""Resale pages (issue 21), included by one line in ``marketplace.urls``."""

from django.urls import path

from orders import resale_views

urlpatterns = [
    path("bookings/<int:pk>/resell/", resale_views.booking_resell, name="booking-resell"),
    path("resale/", resale_views.resale_asks, name="resale-asks"),
    path("resale/<int:pk>/buy/", resale_views.resale_ask_buy, name="resale-ask-buy"),
    path("resale/<int:pk>/withdraw/", resale_views.resale_ask_withdraw, name="resale-ask-withdraw"),
]
