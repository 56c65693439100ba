"""The resale API (issue 21), included by one line in ``marketplace.api``."""

from django.urls import path

from orders import resale_api

urlpatterns = [
    path("bookings/<int:pk>/resell/", resale_api.BookingResellApi.as_view(), name="api-booking-resell"),
    path("resale-asks/", resale_api.ResaleAskListApi.as_view(), name="api-resale-asks"),
    path("resale-asks/<int:pk>/", resale_api.ResaleAskDetailApi.as_view(), name="api-resale-ask"),
    path("resale-asks/<int:pk>/withdraw/", resale_api.ResaleAskWithdrawApi.as_view(), name="api-resale-ask-withdraw"),
    path("resale-asks/<int:pk>/buy/", resale_api.ResaleAskBuyApi.as_view(), name="api-resale-ask-buy"),
]
