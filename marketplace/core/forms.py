"""Page forms check types; services check the rules. This shows a service's refusal on the form that asked."""

from __future__ import annotations

from django.contrib import messages as flash

from marketplace.core.exceptions import ApplicationError


class ServiceErrorsMixin:
    """For ``django.forms.Form``: ``add_service_errors(exc)`` puts an ``ApplicationError``'s field errors next to
    the fields (dotted names such as ``provenance.supplier`` map to ``provenance_supplier``) and the rest, or the
    error's message when it names no field, at the top of the form."""

    service_field_names: dict[str, str] = {}  # service field → form field, where they differ

    def add_service_errors(self, exc: ApplicationError) -> None:
        if not exc.errors:
            self.add_error(None, exc.message)
        for field, messages in exc.errors.items():
            name = self.service_field_names.get(field, field.replace(".", "_"))
            for message in messages:
                if name in self.fields:
                    self.add_error(name, message)
                else:
                    self.add_error(None, message if field == "non_field_errors" else f"{field}: {message}")


def service_errors_to_messages(request, exc: ApplicationError) -> None:
    """A service's refusal as error messages on the next page (a form posted from a list, which redirects back):
    each field error, or the error's message when it names no field."""
    for errors in (exc.errors or {"": [exc.message]}).values():
        for error in errors:
            flash.error(request, error)
