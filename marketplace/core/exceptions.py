"""The one exception type services raise; the API handler and the page views map it once."""

from __future__ import annotations

from django.utils.translation import gettext


class ApplicationError(Exception):
    """A business rule refused the request.

    ``status`` is the HTTP status the API answers with (400 bad input, 403 not allowed, 404 not found,
    409 conflict with the current state — capacity or funds short —, 422 idempotency key reused with another body).
    ``errors`` maps field names to lists of messages, as in ``{"detail", "errors"}`` responses.
    """

    def __init__(
        self, message: str, *, status: int = 400, errors: dict[str, list[str]] | None = None, code: str = "invalid"
    ):
        message = str(message)  # a lazy translation is read now, in the request's language
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors = {
            field: [str(text) for text in texts] if isinstance(texts, list | tuple) else texts
            for field, texts in (errors or {}).items()
        }
        self.code = code


class NotFound(ApplicationError):
    def __init__(self, message: str | None = None):
        super().__init__(message or gettext("Not found."), status=404, code="not_found")


class Conflict(ApplicationError):
    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None, code: str = "conflict"):
        super().__init__(message, status=409, errors=errors, code=code)
