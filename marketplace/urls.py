"""Root URLs: pages, the admin, and the API under /api/v1/ (see ``marketplace.api``)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.preference_views import preferences
from accounts.views import ThrottledLoginView
from orders import search as order_search

urlpatterns = [
    path("", include("portal.urls")),
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
    path("", include("oversight.urls")),
    path("", include("settlement.urls")),
    path("", include("market.urls")),
    path("", include("orders.delivery_urls")),  # delivery: cluster agent page, SSH keys, incident reports
    path("", include("orders.resale_urls")),  # resale of booked time (issue 21)
    path("api/v1/", include("marketplace.api")),
]

# The site's 404 page says so in the reader's language, never an exception's class name (portal.views).
handler404 = "portal.views.page_not_found"
