"""The site's own pages: home (the dashboards), the health check, the Prometheus metrics and the favicon."""

from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from portal import metrics, views


class FaviconView(RedirectView):
    """``/favicon.ico`` (asked for by browsers and tools that ignore ``<link rel="icon">``): the SVG icon, by its
    current static URL (hashed in production, so the redirect is temporary)."""

    permanent = False

    def get_redirect_url(self, *args, **kwargs):
        return static("favicon.svg")


urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),  # Prometheus (portal.metrics: allowed clients only)
    path("favicon.ico", FaviconView.as_view(), name="favicon"),
    path("organizations/<int:pk>/", views.organization_profile, name="organization-profile"),
]
