"""Named API tokens: created (shown once, stored hashed), listed without their secret, revoked; expired and revoked
tokens answer 401; another user's token id answers 404; the login endpoint's token expires too; the tokens page."""

import datetime as dt
import hashlib

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import ApiToken
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def create(client, **body):
    return client.post("/api/v1/tokens/", {"name": "ci", **body}, format="json")


def me(raw: str):
    return APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}")


def test_a_created_token_is_shown_once_stored_hashed_and_authenticates(startup_client, settings):
    # given the default lifetime of 90 days
    settings.API_TOKEN_DAYS = 90
    # when a user creates a token
    response = create(startup_client)
    # then the answer holds the token once; only its SHA-256 is stored; it expires in 90 days
    assert response.status_code == 201, response.content
    raw = response.json()["token"]
    stored = ApiToken.objects.get(pk=response.json()["id"])
    assert raw.startswith("gpuxt_") and stored.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {stored.token_hash, stored.prefix} and raw.startswith(stored.prefix)
    assert abs(stored.expires_at - (timezone.now() + dt.timedelta(days=90))) < dt.timedelta(minutes=1)
    assert AuditEvent.objects.filter(action="accounts.api_token_created", object_id=str(stored.pk)).exists()
    # and it authenticates as the user, whose last use is recorded
    answer = me(raw)
    assert answer.status_code == 200 and answer.json()["username"] == startup_client.user.username
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_the_secret_is_never_listed(startup_client):
    # given a token
    raw = create(startup_client).json()["token"]
    # when the user lists their tokens
    response = startup_client.get("/api/v1/tokens/")
    # then the row is there without the token text or its hash
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["name"] for row in rows] == ["ci"] and rows[0]["active"] is True
    assert "token" not in rows[0] and "token_hash" not in rows[0]
    assert raw not in response.content.decode()


def test_an_expired_token_answers_401(startup_client):
    # given a token created for one day, then past its expiry
    raw = create(startup_client, expires_in_days=1).json()["token"]
    ApiToken.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    # when it is used / then 401
    response = me(raw)
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid, expired or revoked token."


def test_a_revoked_token_answers_401_at_once(startup_client):
    # given a token that works
    created = create(startup_client).json()
    assert me(created["token"]).status_code == 200
    # when the user revokes it
    response = startup_client.delete(f"/api/v1/tokens/{created['id']}/")
    # then it is refused from now on, and listed as revoked
    assert response.status_code == 204
    assert me(created["token"]).status_code == 401
    row = startup_client.get("/api/v1/tokens/").json()["results"][0]
    assert row["revoked_at"] is not None and row["active"] is False
    assert AuditEvent.objects.filter(action="accounts.api_token_revoked").count() == 1


def test_another_users_token_id_answers_404_and_stays_active(startup_client, provider_client):
    # given a token of another user
    created = create(provider_client).json()
    # when this user revokes it by id / then 404 and it still works
    assert startup_client.delete(f"/api/v1/tokens/{created['id']}/").status_code == 404
    assert not startup_client.get("/api/v1/tokens/").json()["results"]
    assert me(created["token"]).status_code == 200


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 81}, "name"),
        ({"name": "ci\u0000"}, "name"),
        ({"name": "ci", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "ci", "expires_in_days": 9999}, "expires_in_days"),
        ({"name": "ci", "expires_in_days": "soon"}, "expires_in_days"),
    ],
)
def test_bad_input_answers_400_with_the_field_and_writes_nothing(startup_client, body, field):
    response = startup_client.post("/api/v1/tokens/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not ApiToken.objects.exists()


def test_tokens_need_a_signed_in_user(api):
    assert api.get("/api/v1/tokens/").status_code == 401
    assert create(api).status_code == 401
    assert not ApiToken.objects.exists()


def test_at_most_twenty_active_tokens(startup_client):
    for n in range(20):
        assert create(startup_client, name=f"t{n}").status_code == 201
    response = create(startup_client, name="one too many")
    assert response.status_code == 409
    assert ApiToken.objects.count() == 20


def test_an_unknown_named_token_answers_401_and_a_login_token_still_works(api):
    # given a login token of a user (DRF's, from POST /auth/token/)
    user = factories.UserFactory()
    login = api.post("/api/v1/auth/token/", {"username": user.username, "password": factories.PASSWORD})
    assert login.status_code == 200
    # then it authenticates, and a made-up named token does not
    assert me(login.json()["token"]).status_code == 200
    assert me("gpuxt_made-up").status_code == 401


def test_a_login_token_expires_after_api_token_days_and_logging_in_again_replaces_it(api, settings):
    # given a login token older than the lifetime
    settings.API_TOKEN_DAYS = 30
    user = factories.UserFactory()
    old = Token.objects.create(user=user)
    Token.objects.filter(pk=old.pk).update(created=timezone.now() - dt.timedelta(days=31))
    # then it is refused
    assert me(old.key).status_code == 401
    # when the user logs in again / then a new token, which works
    response = api.post("/api/v1/auth/token/", {"username": user.username, "password": factories.PASSWORD})
    assert response.status_code == 200 and response.json()["token"] != old.key
    assert me(response.json()["token"]).status_code == 200


# --- the page ------------------------------------------------------------------------------------------------------


def test_the_page_creates_shows_once_lists_and_revokes():
    user = factories.member_of(factories.StartupFactory())
    client = Client()
    client.force_login(user)
    # when the user creates a token on the page
    created = client.post("/account/tokens/", {"name": "laptop", "expires_in_days": 7})
    # then the answer shows it once; the list does not
    assert created.status_code == 201
    token = ApiToken.objects.get(user=user)
    raw = created.context["created"]["raw"]
    assert raw in created.content.decode() and token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    listed = client.get("/account/tokens/")
    assert listed.status_code == 200 and "laptop" in listed.content.decode() and raw not in listed.content.decode()
    # when it revokes the token / then it is refused
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 302
    assert me(raw).status_code == 401


def test_the_page_refuses_bad_input_and_other_users_tokens():
    user, other = factories.UserFactory(), factories.UserFactory()
    theirs = ApiToken.objects.create(
        user=other, name="theirs", prefix="gpuxt_x", token_hash="0" * 64, expires_at=timezone.now()
    )
    client = Client()
    client.force_login(user)
    assert client.post("/account/tokens/", {"name": "", "expires_in_days": 7}).status_code == 400
    assert client.post(f"/account/tokens/{theirs.pk}/revoke/").status_code == 404
    assert Client().get("/account/tokens/").status_code == 302  # to the login page
    assert ApiToken.objects.count() == 1
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
