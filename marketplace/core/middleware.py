"""Request guards every page and API answer shares.

- A NUL character in the path, a query parameter, a header or a posted form field is refused with 400 before any
  view runs: PostgreSQL text cannot hold one, so a filter, a form's choice field (a lookup) or an
  ``Idempotency-Key`` header that passed it on failed with ``DataError`` (500) wherever it reached the database.
  (JSON bodies: ``marketplace.core.parsers`` answers a field error.)
- An API request whose declared body is larger than ``API_MAX_BODY_BYTES`` answers 413 whether or not its view reads
  the body (the JSON parser refuses the ones it reads: ``marketplace.core.parsers``).
- Under /api/ every error answer is in the error shape ``{"detail", "errors"}``: the few Django answers itself
  (a URL that matches no route — ``/api/v1/bookings/-1/`` — 404, a disallowed method before DRF) are turned into it
  instead of the site's HTML error pages.
- These answers come before ``LocaleMiddleware`` chose the language, so the guard chooses it the same way (the
  language cookie, then ``Accept-Language``) for its own answers.
- An ``ApplicationError`` that escapes a page view is answered like the API answers it: its status (400, 403, 404,
  409 …) and message on the site's error page, never a 500. (API views map it themselves, in
  ``marketplace.core.handlers``.)
"""

from __future__ import annotations

from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext

from marketplace.core.exceptions import ApplicationError

NUL = "\x00"


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _has_nul(request) -> bool:
    if NUL in request.path:
        return True
    if any(NUL in key or any(NUL in value for value in values) for key, values in request.GET.lists()):
        return True
    return any(
        NUL in value for key, value in request.META.items() if key.startswith("HTTP_") and isinstance(value, str)
    )


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _form_has_nul(request) -> bool:
    """Whether a posted form (urlencoded or multipart) has a NUL in a field name or value. Django parses the form
    here as it would for the view (the CSRF check reads it too); a body it cannot parse raises as it would there."""
    if request.method != "POST" or not request.content_type.startswith(FORM_TYPES):
        return False
    return any(NUL in key or any(NUL in value for value in values) for key, values in request.POST.lists())


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _is_json(response) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip() == "application/json"


def error_response(request, status: int, message: str, errors: dict | None = None):
    """The one error answer: ``{"detail", "errors"}`` under /api/, else the site's error page."""
    if _is_api(request):
        return JsonResponse({"detail": message, "errors": errors or {}}, status=status)
    return render(request, "error.html", {"status": status, "message": message, "errors": errors or {}}, status=status)


def _nul_message() -> str:
    return gettext("A parameter contains a NUL character.")


def _status_message(status: int) -> str:
    if status == 404:
        return gettext("Not found.")
    try:
        return HTTPStatus(status).phrase + "."
    except ValueError:
        return "Error."


class RequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with translation.override(translation.get_language_from_request(request)):
            refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        response = self.get_response(request)
        if _is_api(request) and response.status_code >= 400 and not _is_json(response):
            # Django's own answers (no route matched, …) in the API's error shape, not the site's HTML pages.
            converted = error_response(request, response.status_code, _status_message(response.status_code))
            if response.has_header("Allow"):
                converted["Allow"] = response["Allow"]
            return converted
        return response

    @staticmethod
    def _refusal(request):
        """The 400/413 answer for a request no view may see, or None."""
        if _has_nul(request):
            return error_response(request, 400, _nul_message())
        # File uploads (multipart: a business licence) may be larger, up to API_MAX_UPLOAD_BYTES.
        limit = settings.API_MAX_BODY_BYTES
        if request.content_type == "multipart/form-data":
            limit = max(limit, getattr(settings, "API_MAX_UPLOAD_BYTES", 0))
        if _is_api(request) and _declared_length(request) > limit:
            message = gettext("The request body is larger than %(limit)s bytes.") % {"limit": limit}
            return error_response(request, 413, message)
        try:
            if _form_has_nul(request):
                return error_response(request, 400, _nul_message())
        except (SuspiciousOperation, MultiPartParserError) as exc:  # too many fields, a malformed multipart body …
            return error_response(request, 400, gettext("The form could not be read: %(reason)s") % {"reason": exc})
        return None

    def process_exception(self, request, exception):
        if isinstance(exception, ApplicationError) and not _is_api(request):
            return error_response(request, exception.status, exception.message, exception.errors)
        return None
