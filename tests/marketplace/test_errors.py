"""The API answers every error as ``{"detail", "errors"}``."""

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from marketplace.core.exceptions import ApplicationError, Conflict
from marketplace.core.handlers import api_exception_handler


def handle(exc):
    request = APIRequestFactory().get("/")
    return api_exception_handler(exc, {"request": request, "view": None})


def test_application_error_keeps_status_and_field_errors():
    response = handle(ApplicationError("Bad window.", errors={"end": ["End must be after start."]}))
    assert response.status_code == 400
    assert response.data == {"detail": "Bad window.", "errors": {"end": ["End must be after start."]}}


def test_conflict_is_409():
    response = handle(Conflict("Not enough free nodes."))
    assert (response.status_code, response.data["detail"]) == (409, "Not enough free nodes.")


def test_nested_serializer_errors_are_flattened_to_dotted_fields():
    exc = serializers.ValidationError({"cluster": {"gpus_per_node": ["Too many."]}, "price": ["Negative."]})
    response = handle(exc)
    assert response.data["errors"] == {"cluster.gpus_per_node": ["Too many."], "price": ["Negative."]}
    assert response.data["detail"] == "Invalid input."


def test_django_validation_error_becomes_400_with_fields():
    response = handle(DjangoValidationError({"credit_code": ["Wrong check character."]}))
    assert response.status_code == 400
    assert response.data["errors"] == {"credit_code": ["Wrong check character."]}


def test_unknown_exceptions_are_not_swallowed():
    assert handle(RuntimeError("boom")) is None  # DRF re-raises: a bug must be loud, not a fake 400


@pytest.mark.django_db
def test_unknown_api_route_is_json_404(startup_client):
    response = startup_client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
