"""Request guards every page and API answer shares.

- A NUL character in the path or a query parameter is refused with 400 before any view runs: PostgreSQL text cannot
  hold one, so a filter that passed it on failed with ``DataError`` (500) wherever it reached the database.
- An ``ApplicationError`` that escapes a page view is answered like the API answers it: its status (400, 403, 404,
  409 …) and message on the site's error page, never a 500. (API views map it themselves, in
  ``marketplace.core.handlers``.)
"""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render

from marketplace.core.exceptions import ApplicationError

NUL = "\x00"
NUL_MESSAGE = "A parameter contains a NUL character."


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _has_nul(request) -> bool:
    if NUL in request.path:
        return True
    return any(NUL in key or any(NUL in value for value in values) for key, values in request.GET.lists())


def error_response(request, status: int, message: str, errors: dict | None = None):
    """The one error answer: ``{"detail", "errors"}`` under /api/, else the site's error page."""
    if _is_api(request):
        return JsonResponse({"detail": message, "errors": errors or {}}, status=status)
    return render(request, "error.html", {"status": status, "message": message, "errors": errors or {}},
                  status=status)


class RequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _has_nul(request):
            return error_response(request, 400, NUL_MESSAGE)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, ApplicationError) and not _is_api(request):
            return error_response(request, exception.status, exception.message, exception.errors)
        return None
