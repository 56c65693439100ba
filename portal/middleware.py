"""The site's own 404 page under ``DEBUG`` too (``make run`` runs the demo with ``DEBUG`` on).

With ``DEBUG`` Django answers a 404 with its technical page (the URLconf listing, or "Raised by: …"), a page outside
the site that shows its internals. This middleware, last in ``MIDDLEWARE``, answers both kinds with the site's 404
page (``portal.views.page_not_found``, the ``handler404`` used without ``DEBUG``): an ``Http404`` a view raised, and
a path that matched no route (``request.resolver_match`` is then unset). Without ``DEBUG`` it does nothing: Django
already does that. The API keeps its JSON answers (``marketplace.core.middleware``).
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404

from portal.views import page_not_found


def _is_page(request) -> bool:
    return not request.path.startswith("/api/")


class SiteNotFoundMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and getattr(request, "resolver_match", None) is None
            and _is_page(request)
        ):
            return page_not_found(request, Http404())
        return response

    def process_exception(self, request, exception):
        if settings.DEBUG and isinstance(exception, Http404) and _is_page(request):
            return page_not_found(request, exception)
        return None
