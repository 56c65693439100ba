"""The API under /api/v1/: each app contributes ``api_urlpatterns`` from its ``urls`` module."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.urls import api_urlpatterns as accounts_api
from ledger.urls import api_urlpatterns as ledger_api
from listings.urls import api_urlpatterns as listings_api
from market.urls import api_urlpatterns as market_api
from orders.api import ListingSearchApi
from orders.urls import api_urlpatterns as orders_api
from oversight.urls import api_urlpatterns as audit_api
from settlement.urls import api_urlpatterns as settlement_api
from vouchers.urls import api_urlpatterns as vouchers_api

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    *accounts_api,
    # The listings search, extended by orders with net prices after the buyer's vouchers (orders.search).
    path("listings/", ListingSearchApi.as_view(), name="api-listings"),
    *listings_api,
    *orders_api,
    *vouchers_api,
    *ledger_api,
    *audit_api,
    *settlement_api,
    *market_api,
    path("", include("orders.delivery_api_urls")),  # delivery: agent API, SSH keys, access, incidents
    path("", include("orders.resale_api_urls")),  # resale of booked time (issue 21)
]
