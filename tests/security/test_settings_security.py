"""Production security settings: CSP on every response, cookie flags, referrer and opener policies."""

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db


def csp_directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


def test_pages_send_a_strict_content_security_policy():
    # when an anonymous user opens the login page
    response = Client().get("/login/")
    # then scripts come only from our origin, nothing may frame the site
    csp = csp_directives(response)
    assert csp["default-src"] == "default-src 'self'"
    assert csp["script-src"] == "script-src 'self'"
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["img-src"] == "img-src 'self' data:"
    assert csp["object-src"] == "object-src 'none'"


def test_api_responses_carry_the_policy_and_hardening_headers(startup_client):
    response = startup_client.get("/api/v1/me/")
    assert response.status_code == 200
    assert "Content-Security-Policy" in response
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_cookies_are_secure_httponly_and_same_site():
    assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE
    assert settings.SESSION_COOKIE_HTTPONLY
    assert settings.SESSION_COOKIE_SAMESITE == settings.CSRF_COOKIE_SAMESITE == "Lax"
    assert settings.SECURE_HSTS_SECONDS >= 31536000 and settings.SECURE_HSTS_INCLUDE_SUBDOMAINS


def test_the_csrf_cookie_set_by_the_login_page_has_its_flags():
    response = Client().get("/login/")
    cookie = response.cookies[settings.CSRF_COOKIE_NAME]
    assert cookie["secure"] and cookie["samesite"] == "Lax"


def test_debug_is_off_under_test_settings_like_production():
    assert settings.DEBUG is False
