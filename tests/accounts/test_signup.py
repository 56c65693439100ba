"""Sign-up (page and ``POST /api/v1/signup/``), e-mail confirmation and password reset by e-mail."""

import re
import time
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core import mail, signing
from django.test import Client

from accounts import emails
from accounts.models import Membership, Organization, VerificationStatus
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db

SIGNUP, CONFIRM = "/api/v1/signup/", "/api/v1/signup/confirm/"
GOOD_CODE = factories.credit_code(777_001)
User = get_user_model()


def body(**overrides) -> dict:
    return {
        "kind": "startup",
        "name": "Moonshot Vision",
        "credit_code": GOOD_CODE,
        "city": "Hangzhou",
        "legal_representative": "Liang Wen",
        "owners": ["Liang Wen", "Zhao Min"],
        "is_sme": True,
        "username": "liang",
        "email": "liang@moonshot.example.cn",
        "password": "correct-horse-battery-9",
        **overrides,
    }


def nothing_written(users_before: int = 0, orgs_before: int = 0) -> bool:
    return (
        User.objects.count() == users_before
        and Organization.objects.count() == orgs_before
        and not AuditEvent.objects.filter(action="accounts.signed_up").exists()
        and not mail.outbox
    )


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


def test_signup_creates_an_inactive_owner_of_a_pending_organization_and_emails_a_link(
    api, django_capture_on_commit_callbacks
):
    # when a person signs up a startup
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(SIGNUP, body(credit_code=GOOD_CODE.lower()), format="json")
    # then the user (inactive), the organization (pending, code upper-cased) and the owner membership exist
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["organization"]["verification_status"] == "pending"
    assert data["user"] == {
        "id": data["user"]["id"],
        "username": "liang",
        "email": "liang@moonshot.example.cn",
        "is_active": False,
    }
    org = Organization.objects.get(pk=data["organization"]["id"])
    assert (org.kind, org.city, org.credit_code, org.owners, org.is_sme) == (
        "startup",
        "Hangzhou",
        GOOD_CODE,
        ["Liang Wen", "Zhao Min"],
        True,
    )
    assert Membership.objects.get(organization=org).role == "owner"
    assert AuditEvent.objects.filter(action="accounts.signed_up", organization_id=org.pk).count() == 1
    # and one e-mail carries the confirmation link
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["liang@moonshot.example.cn"]
    assert "/signup/confirm/" in link_in(mail.outbox[0])


def test_an_unconfirmed_user_cannot_get_a_token(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        api.post(SIGNUP, body(), format="json")
    response = api.post("/api/v1/auth/token/", {"username": "liang", "password": body()["password"]}, format="json")
    assert response.status_code == 400


def test_confirming_activates_once_and_a_reused_link_is_refused(api, django_capture_on_commit_callbacks):
    # given a sign-up and its e-mailed link
    with django_capture_on_commit_callbacks(execute=True):
        api.post(SIGNUP, body(), format="json")
    token = link_in(mail.outbox[0]).rstrip("/").rsplit("/", 1)[1]
    # when the token is confirmed
    response = api.post(CONFIRM, {"token": token}, format="json")
    # then the user is active and may get a token
    assert response.status_code == 200, response.content
    assert User.objects.get(username="liang").is_active
    assert (
        api.post(
            "/api/v1/auth/token/", {"username": "liang", "password": body()["password"]}, format="json"
        ).status_code
        == 200
    )
    assert AuditEvent.objects.filter(action="accounts.email_confirmed").count() == 1
    # and the same link a second time is a 400 under ``token``, writing nothing more
    again = api.post(CONFIRM, {"token": token}, format="json")
    assert again.status_code == 400
    assert "already used" in again.json()["errors"]["token"][0]
    assert AuditEvent.objects.filter(action="accounts.email_confirmed").count() == 1


def test_an_expired_or_forged_confirmation_link_is_refused(api):
    user = factories.UserFactory(is_active=False)
    four_days_ago = time.time() - 4 * 24 * 3600
    with mock.patch("django.core.signing.time.time", return_value=four_days_ago):
        token = emails.confirmation_token(user)
    expired = api.post(CONFIRM, {"token": token}, format="json")
    assert expired.status_code == 400 and "expired" in expired.json()["errors"]["token"][0]
    forged = signing.dumps({"u": user.pk, "s": "0" * 20}, salt="something else")
    assert api.post(CONFIRM, {"token": forged}, format="json").status_code == 400
    user.refresh_from_db()
    assert not user.is_active


def test_the_confirmation_page_confirms_on_post_only(django_capture_on_commit_callbacks):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/signup/", {**body(owners="Liang Wen\nZhao Min"), "password2": body()["password"]})
    path = link_in(mail.outbox[0]).split("testserver", 1)[1]
    # a GET (a mail scanner following the link) changes nothing
    assert client.get(path).status_code == 200
    assert not User.objects.get(username="liang").is_active
    # the button's POST confirms and sends to the login page
    response = client.post(path)
    assert response.status_code == 302 and response.url == "/login/"
    assert User.objects.get(username="liang").is_active
    # a second use shows why it failed
    again = client.post(path)
    assert again.status_code == 400 and b"already used" in again.content


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"credit_code": GOOD_CODE[:-1] + ("0" if GOOD_CODE[-1] != "0" else "1")}, "credit_code", "check character"),
        ({"credit_code": "123"}, "credit_code", "18 characters"),
        ({"password": "12345678"}, "password", "too common"),
        ({"password": "liang-moonshot"[:5]}, "password", "too short"),
        ({"password": "liang2026"}, "password", "similar"),
        ({"email": "not-an-email"}, "email", "valid"),
        ({"kind": "issuer"}, "kind", "valid choice"),
        ({"city": "Atlantis"}, "city", "valid choice"),
        ({"owners": []}, "owners", "empty"),
        ({"username": "bad name!"}, "username", "valid username"),
        ({"legal_representative": ""}, "legal_representative", "blank"),
    ],
)
def test_bad_input_is_a_400_with_the_field_and_writes_nothing(api, overrides, field, fragment):
    response = api.post(SIGNUP, body(**overrides), format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors, errors
    assert fragment in " ".join(errors[field]).lower() or fragment in " ".join(errors[field]), errors
    assert nothing_written()


@pytest.mark.parametrize(
    ("existing", "overrides", "field"),
    [
        ("org", {"credit_code": factories.credit_code(777_002)}, "credit_code"),
        ("org", {"name": "ACME compute"}, "name"),
        ("user", {"username": "Taken"}, "username"),
        ("user", {"email": "TAKEN@example.cn"}, "email"),
    ],
)
def test_duplicates_are_a_400_on_their_field_and_write_nothing(api, existing, overrides, field):
    # given an organization and a user that exist already
    factories.StartupFactory(name="Acme Compute", credit_code=factories.credit_code(777_002))
    factories.UserFactory(username="taken", email="taken@example.cn")
    users, orgs = User.objects.count(), Organization.objects.count()
    # when someone signs up with the same code / name (any case) / username / e-mail
    response = api.post(SIGNUP, body(**overrides), format="json")
    # then the field says so and nothing is written
    assert response.status_code == 400
    assert "already" in " ".join(response.json()["errors"][field]) or "taken" in " ".join(
        response.json()["errors"][field]
    )
    assert nothing_written(users, orgs)


def test_several_problems_are_reported_together(api):
    factories.UserFactory(username="liang")
    response = api.post(SIGNUP, body(credit_code="X" * 18, password="123"), format="json")
    assert response.status_code == 400
    assert {"credit_code", "username", "password"} <= set(response.json()["errors"])


def test_signup_page_shows_field_errors_in_place_and_writes_nothing():
    client = Client()
    response = client.post("/signup/", {**body(credit_code="91310000MA0000000X", owners="A"), "password2": "x"})
    assert response.status_code == 400
    form = response.context["form"]
    assert "credit_code" in form.errors and "password2" in form.errors
    assert nothing_written()


def test_signup_page_signs_up_a_provider(django_capture_on_commit_callbacks):
    client = Client()
    assert client.get("/signup/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/signup/",
            {**body(kind="provider", owners="Liang Wen, Zhao Min", is_sme=""), "password2": body()["password"]},
        )
    assert response.status_code == 302 and response.url == "/signup/done/"
    org = Organization.objects.get(name="Moonshot Vision")
    assert (org.kind, org.owners, org.is_sme, org.verification_status) == (
        "provider",
        ["Liang Wen", "Zhao Min"],
        False,
        VerificationStatus.PENDING,
    )
    assert "liang@moonshot.example.cn" in client.get("/signup/done/").content.decode()
    assert len(mail.outbox) == 1


# --- password reset ------------------------------------------------------------------------------------------------


def test_password_reset_by_email_works_once():
    # given an active user
    user = factories.UserFactory(username="wen", email="wen@example.cn")
    client = Client()
    # when they ask for a reset link
    response = client.post("/password-reset/", {"email": "wen@example.cn"})
    assert response.status_code == 302 and response.url == "/password-reset/sent/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["wen@example.cn"]
    path = link_in(mail.outbox[0]).split("testserver", 1)[1]
    # and follow it (Django redirects to a session-bound URL) and set a new password
    page = client.get(path, follow=True)
    assert page.status_code == 200 and page.context["validlink"]
    set_url = page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": "a-much-better-pass-42", "new_password2": "a-much-better-pass-42"})
    assert done.status_code == 302 and done.url == "/password-reset/done/"
    user.refresh_from_db()
    assert user.check_password("a-much-better-pass-42")
    # then the same link again is refused
    reused = Client().get(path, follow=True)
    assert reused.status_code == 200 and not reused.context["validlink"]
    assert b"not valid" in reused.content


def test_password_reset_refuses_a_weak_password():
    user = factories.UserFactory(username="wen", email="wen@example.cn")
    client = Client()
    client.post("/password-reset/", {"email": "wen@example.cn"})
    path = link_in(mail.outbox[0]).split("testserver", 1)[1]
    set_url = client.get(path, follow=True).redirect_chain[-1][0]
    response = client.post(set_url, {"new_password1": "12345678", "new_password2": "12345678"})
    assert response.status_code == 200 and "new_password2" in response.context["form"].errors
    user.refresh_from_db()
    assert user.check_password(factories.PASSWORD)


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same():
    response = Client().post("/password-reset/", {"email": "nobody@example.cn"})
    assert response.status_code == 302 and response.url == "/password-reset/sent/"
    assert not mail.outbox
