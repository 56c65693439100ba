from django.urls import path

from orders import api, views

api_urlpatterns = [
    path("quotes/", api.QuoteApi.as_view(), name="api-quote"),
    path("bookings/", api.BookingListCreateApi.as_view(), name="api-bookings"),
    path("bookings/<int:pk>/", api.BookingDetailApi.as_view(), name="api-booking"),
    path("bookings/<int:pk>/confirm/", api.BookingConfirmApi.as_view(), name="api-booking-confirm"),
    path("bookings/<int:pk>/cancel/", api.BookingCancelApi.as_view(), name="api-booking-cancel"),
    path("bids/", api.BidListCreateApi.as_view(), name="api-bids"),
    path("bids/<int:pk>/", api.BidDetailApi.as_view(), name="api-bid"),
    path("bids/<int:pk>/cancel/", api.BidCancelApi.as_view(), name="api-bid-cancel"),
    path("market/depth/", api.MarketDepthApi.as_view(), name="api-market-depth"),
]

urlpatterns = [
    path("listings/<int:listing_id>/book/", views.book, name="booking-new"),
    path("listings/<int:listing_id>/book/quote/", views.book_quote, name="booking-quote"),
    path("bookings/", views.booking_list, name="booking-list"),
    path("bookings/<int:pk>/", views.booking_detail, name="booking-detail"),
    path("bookings/<int:pk>/cancel/", views.booking_cancel, name="booking-cancel"),
    path("bookings/<int:pk>/confirm/", views.booking_confirm, name="booking-confirm"),
    path("provider/bookings/", views.provider_bookings, name="provider-bookings"),
    path("bids/", views.bid_list, name="bid-list"),
    path("bids/<int:pk>/cancel/", views.bid_cancel, name="bid-cancel"),
    path("market/", views.market, name="market"),
]
