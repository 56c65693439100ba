import pytest

from tests import factories

pytestmark = pytest.mark.django_db


def test_token_for_good_credentials(api):
    # given a user
    user = factories.UserFactory(username="alice")
    # when they ask for a token
    response = api.post("/api/v1/auth/token/", {"username": "alice", "password": factories.PASSWORD}, format="json")
    # then they get one that authenticates /me/
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    me = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token}")
    assert me.status_code == 200
    assert me.json()["username"] == user.username


def test_token_with_wrong_password_is_400_with_the_error_format(api):
    factories.UserFactory(username="alice")
    response = api.post("/api/v1/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "Unable to log in with the given username and password."
    assert body["errors"] == {"non_field_errors": [body["detail"]]}


def test_token_with_missing_fields_names_each_field(api):
    response = api.post("/api/v1/auth/token/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"username", "password"}


def test_token_with_malformed_json_is_400(api):
    response = api.post("/api/v1/auth/token/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_me_requires_authentication(api):
    response = api.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided.", "errors": {}}


def test_me_lists_organizations_and_roles(client_for):
    # given a user in a startup (owner) and a platform org (auditor)
    startup = factories.StartupFactory(name="DeepLoom")
    platform = factories.PlatformFactory(name="Ops")
    user = factories.member_of(startup)
    factories.MembershipFactory(user=user, organization=platform, role="auditor")
    # when they read /me/
    body = client_for(user).get("/api/v1/me/").json()
    # then both memberships are there, with kinds and roles
    got = {(m["organization"]["name"], m["organization"]["kind"], m["role"]) for m in body["memberships"]}
    assert got == {("DeepLoom", "startup", "owner"), ("Ops", "platform", "auditor")}


def test_bad_token_is_401(api):
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."
