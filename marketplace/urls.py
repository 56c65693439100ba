"""Root URLs: pages, the admin, and the API under /api/v1/ (see ``marketplace.api``)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from accounts.preference_views import preferences
from accounts.views import ThrottledLoginView
from marketplace.core import views as core_views
from orders import search as order_search


class FaviconView(RedirectView):
    """``/favicon.ico`` (asked for by browsers and tools that ignore ``<link rel="icon">``): the SVG icon, by its
    current static URL (hashed in production, so the redirect is temporary)."""

    permanent = False

    def get_redirect_url(self, *args, **kwargs):
        return static("favicon.svg")


urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("favicon.ico", FaviconView.as_view(), name="favicon"),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The header's language switch (Django's set_language: a cookie, then back to the page) and the user's
    # time zone and language. URLs carry no language prefix.
    path("i18n/", include("django.conf.urls.i18n")),
    path("account/preferences/", preferences, name="preferences"),
    path("admin/", admin.site.urls),
    # The listings page, extended by orders with net prices after the buyer's vouchers (orders.search).
    path("listings/", order_search.browse, name="listings-browse"),
    # Sign-up, e-mail confirmation, password reset, the staff's verification queue, teams and invitations.
    path("", include("accounts.urls")),
    path("", include("listings.urls")),
    path("", include("orders.urls")),
    path("", include("vouchers.urls")),
    path("", include("ledger.urls")),
    path("", include("audit.urls")),
    path("", include("settlement.urls")),
    path("api/v1/", include("marketplace.api")),
]
