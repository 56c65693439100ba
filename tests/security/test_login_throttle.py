"""Failed logins are limited per (username, client IP) on the login page and on POST /api/v1/auth/token/."""

import pytest
from django.test import Client, override_settings

from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("limit_of_three")]


@pytest.fixture
def limit_of_three():
    with override_settings(LOGIN_FAILURE_LIMIT=3):
        yield


def token(api, username, password, ip="10.0.0.1"):
    return api.post("/api/v1/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_api_refuses_after_the_limit_even_with_the_right_password(api):
    # given a user who failed three times from one IP
    user = factories.UserFactory()
    for _ in range(3):
        assert token(api, user.username, "wrong").status_code == 400
    # when they now send the right password
    response = token(api, user.username, factories.PASSWORD)
    # then 429 in the error format, and no token
    assert response.status_code == 429
    assert response.json()["detail"].startswith("Too many failed login attempts")
    assert "token" not in response.json()


def test_api_limit_is_per_ip_and_per_username(api):
    # given a user blocked from one IP
    user, other = factories.UserFactory(), factories.UserFactory()
    for _ in range(3):
        token(api, user.username, "wrong")
    # when the same user logs in from another IP, or another user from the blocked IP
    # then both succeed
    assert token(api, user.username, factories.PASSWORD, ip="10.0.0.2").status_code == 200
    assert token(api, other.username, factories.PASSWORD).status_code == 200


def test_api_success_clears_earlier_failures(api):
    # given two failures then a success
    user = factories.UserFactory()
    token(api, user.username, "wrong")
    token(api, user.username, "wrong")
    assert token(api, user.username, factories.PASSWORD).status_code == 200
    # when two more failures follow
    token(api, user.username, "wrong")
    token(api, user.username, "wrong")
    # then the count started again: the right password still works
    assert token(api, user.username, factories.PASSWORD).status_code == 200


def test_api_username_case_does_not_dodge_the_limit(api):
    # given failures with changing case
    user = factories.UserFactory()
    for name in (user.username, user.username.upper(), user.username.title()):
        token(api, name, "wrong")
    # then the pair is blocked
    assert token(api, user.username, factories.PASSWORD).status_code == 429


def login(client, username, password):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR="10.0.0.9")


def test_login_page_shows_a_clear_message_once_blocked():
    # given a user who failed three times on the login page
    user, client = factories.UserFactory(), Client()
    for _ in range(3):
        assert login(client, user.username, "wrong").status_code == 200
    # when the right password is sent
    response = login(client, user.username, factories.PASSWORD)
    # then 429, the form says why, the username stays filled in, and no session is opened
    assert response.status_code == 429
    assert b"Too many failed login attempts" in response.content
    assert f'value="{user.username}"'.encode() in response.content
    assert "_auth_user_id" not in client.session


def test_login_page_logs_in_below_the_limit():
    # given two failures
    user, client = factories.UserFactory(), Client()
    login(client, user.username, "wrong")
    login(client, user.username, "wrong")
    # when the right password is sent / then the user is redirected, logged in
    response = login(client, user.username, factories.PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


@override_settings(LOGIN_FAILURE_LIMIT=10)
def test_default_style_limit_of_ten_per_fifteen_minutes(api, settings):
    # given the production window
    assert settings.LOGIN_FAILURE_WINDOW_SECONDS == 15 * 60
    user = factories.UserFactory()
    # when ten failures are sent / then the eleventh attempt is refused
    assert [token(api, user.username, "wrong").status_code for _ in range(10)] == [400] * 10
    assert token(api, user.username, factories.PASSWORD).status_code == 429


@pytest.mark.django_db
def test_logins_still_work_when_the_cache_is_down(api, settings, caplog):
    # given the cache (Redis) unreachable: nothing listens on port 1
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    user = factories.UserFactory(username="outage")
    # when the user signs in through the API and the login page / then both work, and the outage is logged
    response = api.post("/api/v1/auth/token/", {"username": "outage", "password": factories.PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    page = Client().post("/login/", {"username": user.username, "password": factories.PASSWORD})
    assert page.status_code == 302
    assert "throttle unavailable" in caplog.text


def test_a_made_up_x_forwarded_for_does_not_change_the_throttle_identity(rf):
    # given DRF's throttle identity (the token endpoint's "auth" scope), with no proxy trusted
    from rest_framework.request import Request
    from rest_framework.throttling import ScopedRateThrottle

    throttle = ScopedRateThrottle()
    # when two requests from one address claim different forwarded addresses
    first = Request(rf.post("/api/v1/auth/token/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="1.2.3.4"))
    second = Request(rf.post("/api/v1/auth/token/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="5.6.7.8"))
    # then both count against the real peer address
    assert throttle.get_ident(first) == throttle.get_ident(second) == "10.0.0.9"


@pytest.mark.parametrize("where", ["api", "page"])
def test_one_address_cannot_try_many_usernames(api, where):
    # given an address that failed once each for four different usernames (per-address limit 4)
    users = [factories.UserFactory() for _ in range(5)]
    page = Client()

    def attempt(username, password, ip="10.9.9.9"):
        if where == "api":
            return token(api, username, password, ip=ip).status_code
        return page.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip).status_code

    with override_settings(LOGIN_IP_FAILURE_LIMIT=4):
        for user in users[:4]:
            attempt(user.username, "wrong")
        # when a fifth username is tried from it, even with the right password / then refused
        assert attempt(users[4].username, factories.PASSWORD) == 429
        # and the same user from another address is not
        assert attempt(users[4].username, factories.PASSWORD, ip="10.9.9.10") in (200, 302)
