"""Issuer and platform organizations are created by platform staff only, who invite their first owner by e-mail; a
new confirmation e-mail on request, answered the same whether or not an account waits for one."""

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import Invitation, Membership, Organization
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def body(**overrides):
    return {
        "kind": "issuer",
        "name": "Wuxi Compute Voucher Office",
        "credit_code": factories.credit_code(9001),
        "city": "Suzhou",
        "legal_representative": "Wuxi Bureau",
        "owner_email": "head@wuxi.gov.cn",
        **overrides,
    }


def test_staff_create_an_issuer_whose_invited_owner_joins(staff_client, api, django_capture_on_commit_callbacks):
    # when platform staff create an issuer
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post("/api/v1/organizations/", body(), format="json")
    # then it exists, verified, with an owner invitation e-mailed; the decision is audited
    assert response.status_code == 201, response.content
    org = Organization.objects.get(name="Wuxi Compute Voucher Office")
    assert org.kind == "issuer" and org.is_verified and org.verification_decided_by == staff_client.user
    invitation = Invitation.objects.get(organization=org)
    assert invitation.role == "owner" and invitation.email == "head@wuxi.gov.cn"
    assert mail.outbox[0].to == ["head@wuxi.gov.cn"]
    assert AuditEvent.objects.filter(action="accounts.organization_created_by_staff", object_id=str(org.pk)).exists()
    # when the invitee accepts with a new account / then they own the issuer
    token = re.search(r"/invitations/([^/\s]+)/", mail.outbox[0].body).group(1)
    accepted = api.post(
        f"/api/v1/invitations/{token}/accept/", {"username": "wuxi", "password": "a-fine-pass-2026"}, format="json"
    )
    assert accepted.status_code == 201, accepted.content
    assert Membership.objects.get(organization=org, user__username="wuxi").role == "owner"


@pytest.mark.parametrize("role", ["startup_client", "provider_client", "issuer_client", "auditor_client"])
def test_nobody_but_staff_creates_one(request, role):
    client = request.getfixturevalue(role)
    response = client.post("/api/v1/organizations/", body(), format="json")
    assert response.status_code == 403
    assert not Organization.objects.filter(name="Wuxi Compute Voucher Office").exists()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"kind": "startup"}, "kind"),
        ({"credit_code": "91310000MA1FL0000X"}, "credit_code"),
        ({"owner_email": "not-an-address"}, "owner_email"),
        ({"city": "Atlantis"}, "city"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_input_answers_400_and_writes_nothing(staff_client, overrides, field):
    response = staff_client.post("/api/v1/organizations/", body(**overrides), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Organization.objects.filter(kind="issuer").exists()
    assert not Invitation.objects.exists() and not mail.outbox


def test_a_duplicate_name_or_code_answers_400(staff_client):
    existing = factories.IssuerFactory()
    for overrides, field in (({"name": existing.name}, "name"), ({"credit_code": existing.credit_code}, "credit_code")):
        response = staff_client.post("/api/v1/organizations/", body(**overrides), format="json")
        assert response.status_code == 400 and field in response.json()["errors"]
    assert Organization.objects.filter(kind="issuer").count() == 1


def test_the_staff_page_creates_and_refuses_others():
    staff, startup_member = (
        factories.member_of(factories.PlatformFactory()),
        factories.member_of(factories.StartupFactory()),
    )
    client = Client()
    client.force_login(staff)
    assert client.get("/staff/organizations/new/").status_code == 200
    bad = client.post("/staff/organizations/new/", body(owner_email="x"))
    assert bad.status_code == 400 and not Organization.objects.filter(kind="issuer").exists()
    done = client.post("/staff/organizations/new/", body(kind="platform", name="Second Ops"))
    assert done.status_code == 302
    assert Organization.objects.get(name="Second Ops").kind == "platform"
    other = Client()
    other.force_login(startup_member)
    assert other.get("/staff/organizations/new/").status_code == 403
    assert other.post("/staff/organizations/new/", body(name="Sneaky")).status_code == 403
    assert not Organization.objects.filter(name="Sneaky").exists()


# --- a new confirmation e-mail -------------------------------------------------------------------------------------


def test_a_waiting_account_gets_a_new_link_that_works(api, django_capture_on_commit_callbacks):
    # given a user who signed up but never confirmed
    user = factories.UserFactory(email="lost@example.cn", is_active=False)
    # when they ask for a new link
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/signup/resend/", {"email": "LOST@example.cn"}, format="json")
    # then it is e-mailed, and it confirms the address
    assert response.status_code == 202
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["lost@example.cn"]
    token = re.search(r"/signup/confirm/([^/\s]+)/", mail.outbox[0].body).group(1)
    assert api.post("/api/v1/signup/confirm/", {"token": token}, format="json").status_code == 200
    user.refresh_from_db()
    assert user.is_active


def test_the_answer_does_not_tell_who_has_an_account(api, django_capture_on_commit_callbacks):
    # given an active user, and an address nobody uses
    factories.UserFactory(email="active@example.cn")
    with django_capture_on_commit_callbacks(execute=True):
        known = api.post("/api/v1/signup/resend/", {"email": "active@example.cn"}, format="json")
        unknown = api.post("/api/v1/signup/resend/", {"email": "nobody@example.cn"}, format="json")
    # then both answers are the same and nothing is sent
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert not mail.outbox


def test_repeated_requests_send_one_e_mail_in_five_minutes(api, django_capture_on_commit_callbacks):
    factories.UserFactory(email="twice@example.cn", is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            assert api.post("/api/v1/signup/resend/", {"email": "twice@example.cn"}, format="json").status_code == 202
    assert len(mail.outbox) == 1


def test_a_bad_address_is_a_400_naming_the_field(api):
    response = api.post("/api/v1/signup/resend/", {"email": "nope"}, format="json")
    assert response.status_code == 400 and "email" in response.json()["errors"]


def test_the_resend_page(client, django_capture_on_commit_callbacks):
    factories.UserFactory(email="page@example.cn", is_active=False)
    assert client.get("/signup/resend/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/signup/resend/", {"email": "page@example.cn"})
    assert response.status_code == 200 and 'id="resend-sent"' in response.content.decode()
    assert len(mail.outbox) == 1
    assert client.post("/signup/resend/", {"email": "x"}).status_code == 400
