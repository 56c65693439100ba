"""Teams: owners invite by e-mail with a role, invitations expire and work once, the last owner stays, members are
removed by owners or leave; ``GET /me/`` lists memberships; the team page."""

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import Invitation, Membership
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def org():
    return factories.StartupFactory(name="DeepLoom")


@pytest.fixture
def owner(org):
    return factories.member_of(org, username="owner", email="owner@example.cn")


def invite(client, org, email="new@example.cn", role="member", capture=None):
    if capture is None:
        return client.post(
            f"/api/v1/organizations/{org.pk}/invitations/", {"email": email, "role": role}, format="json"
        )
    with capture(execute=True):
        return client.post(
            f"/api/v1/organizations/{org.pk}/invitations/", {"email": email, "role": role}, format="json"
        )


def token_in(message) -> str:
    return re.search(r"/invitations/([^/\s]+)/", message.body).group(1)


def test_owner_invites_and_a_new_person_accepts_with_a_new_account(
    client_for, owner, org, api, django_capture_on_commit_callbacks
):
    # when the owner invites an address
    response = invite(client_for(owner), org, email="New@Example.cn", capture=django_capture_on_commit_callbacks)
    # then a pending invitation (no token in the answer) and an e-mail with the link
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending" and "token" not in response.json()
    assert mail.outbox[0].to == ["New@example.cn"]
    token = token_in(mail.outbox[0])
    # when the invitee accepts without an account, choosing a username and password
    accepted = api.post(
        f"/api/v1/invitations/{token}/accept/", {"username": "newbie", "password": "a-fine-pass-2026"}, format="json"
    )
    # then the user exists (active: the link proved the address) and is a member
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["role"] == "member" and accepted.json()["organization"]["id"] == org.pk
    user = User.objects.get(username="newbie")
    assert user.is_active and user.email == "New@example.cn"
    assert Membership.objects.get(user=user, organization=org).role == "member"
    assert {"accounts.invitation_created", "accounts.invitation_accepted"} <= set(
        AuditEvent.objects.values_list("action", flat=True)
    )
    # and the same link again is refused
    again = api.post(
        f"/api/v1/invitations/{token}/accept/", {"username": "other", "password": "a-fine-pass-2026"}, format="json"
    )
    assert again.status_code == 400 and "already accepted" in again.json()["errors"]["token"][0]
    assert not User.objects.filter(username="other").exists()


@pytest.fixture
def raw_token(django_capture_on_commit_callbacks):
    """``raw_token(client, org, email, role)``: invite and read the token from the e-mail sent after commit."""

    def make(client, org, email, role) -> str:
        response = invite(client, org, email=email, role=role, capture=django_capture_on_commit_callbacks)
        assert response.status_code == 201, response.content
        return token_in(mail.outbox[-1])

    return make


def test_a_signed_in_user_with_the_invited_email_joins_and_a_new_invitation_replaces_the_old(
    client_for, owner, org, raw_token
):
    existing = factories.UserFactory(email="dev@example.cn")
    first = raw_token(client_for(owner), org, "dev@example.cn", "member")
    second = raw_token(client_for(owner), org, "dev@example.cn", "owner")
    client = client_for(existing)
    replaced = client.post(f"/api/v1/invitations/{first}/accept/", {}, format="json")
    assert replaced.status_code == 400 and "replaced" in replaced.json()["detail"]
    assert client.post(f"/api/v1/invitations/{second}/accept/", {}, format="json").status_code == 201
    assert Membership.objects.get(user=existing, organization=org).role == "owner"


def test_an_invitation_for_another_address_is_refused(client_for, owner, org, raw_token):
    raw = raw_token(client_for(owner), org, "someone@example.cn", "member")
    stranger = factories.UserFactory(email="stranger@example.cn")
    response = client_for(stranger).post(f"/api/v1/invitations/{raw}/accept/", {}, format="json")
    assert response.status_code == 403
    assert not Membership.objects.filter(user=stranger).exists()


def test_an_expired_invitation_is_a_400_and_writes_nothing(client_for, owner, org, api, raw_token):
    raw = raw_token(client_for(owner), org, "late@example.cn", "member")
    Invitation.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    users = User.objects.count()
    response = api.post(
        f"/api/v1/invitations/{raw}/accept/", {"username": "late", "password": "a-fine-pass-2026"}, format="json"
    )
    assert response.status_code == 400 and "expired" in response.json()["errors"]["token"][0]
    assert User.objects.count() == users and Invitation.objects.get().status == "pending"


def test_invitations_last_seven_days(client_for, owner, org):
    before = timezone.now()
    invite(client_for(owner), org)
    expires = Invitation.objects.get().expires_at
    assert dt.timedelta(days=7) <= expires - before < dt.timedelta(days=7, minutes=1)


def test_accepting_with_a_weak_password_or_taken_username_names_the_field(client_for, owner, org, api, raw_token):
    raw = raw_token(client_for(owner), org, "n@example.cn", "member")
    factories.UserFactory(username="taken")
    weak = api.post(f"/api/v1/invitations/{raw}/accept/", {"username": "taken", "password": "123"}, format="json")
    assert weak.status_code == 400 and {"username", "password"} <= set(weak.json()["errors"])
    assert Invitation.objects.get().status == "pending"
    assert api.post("/api/v1/invitations/not-a-token/accept/", {}, format="json").status_code == 404


@pytest.mark.parametrize(
    ("kind", "role", "ok"),
    [
        ("startup", "owner", True),
        ("startup", "member", True),
        ("startup", "auditor", False),
        ("issuer", "auditor", True),
    ],
)
def test_roles_that_can_be_invited(client_for, kind, role, ok):
    org = factories.IssuerFactory() if kind == "issuer" else factories.StartupFactory()
    response = invite(client_for(factories.member_of(org)), org, role=role)
    assert response.status_code == (201 if ok else 400)
    if not ok:
        assert "role" in response.json()["errors"] and not Invitation.objects.exists()


def test_bad_invitations_write_nothing(client_for, owner, org):
    client = client_for(owner)
    assert invite(client, org, email="not-an-email").status_code == 400
    assert invite(client, org, email=owner.email).status_code == 400  # already a member
    member = factories.member_of(org, role="member")
    assert invite(client_for(member), org).status_code == 403  # members do not invite
    other = factories.StartupFactory()
    assert invite(client, other).status_code == 404  # another organization
    assert not Invitation.objects.exists()


def test_members_list_and_removal_and_the_last_owner(client_for, owner, org):
    member = factories.member_of(org, role="member", username="mia")
    owner_client = client_for(owner)
    # the members list
    names = {
        row["username"]: row["role"]
        for row in owner_client.get(f"/api/v1/organizations/{org.pk}/members/").json()["results"]
    }
    assert names == {"owner": "owner", "mia": "member"}
    # a member cannot remove the owner
    assert client_for(member).delete(f"/api/v1/organizations/{org.pk}/members/{owner.pk}/").status_code == 403
    # the last owner can neither leave nor be removed
    last = owner_client.delete(f"/api/v1/organizations/{org.pk}/members/{owner.pk}/")
    assert last.status_code == 409 and "needs an owner" in last.json()["detail"]
    # the owner removes the member
    assert owner_client.delete(f"/api/v1/organizations/{org.pk}/members/{member.pk}/").status_code == 204
    assert not Membership.objects.filter(user=member).exists()
    assert AuditEvent.objects.filter(action="accounts.member_removed", organization_id=org.pk).count() == 1
    # with a second owner, an owner may leave
    second = factories.member_of(org, role="owner")
    assert owner_client.delete(f"/api/v1/organizations/{org.pk}/members/{owner.pk}/").status_code == 204
    assert list(Membership.objects.filter(organization=org).values_list("user", flat=True)) == [second.pk]
    # and others' organizations are 404
    assert (
        client_for(second).delete(f"/api/v1/organizations/{factories.StartupFactory().pk}/members/1/").status_code
        == 404
    )


def test_me_lists_memberships_with_roles(client_for, owner, org):
    factories.MembershipFactory(
        user=owner, organization=factories.IssuerFactory(name="Hangzhou office"), role="auditor"
    )
    rows = client_for(owner).get("/api/v1/me/").json()["memberships"]
    assert {(r["organization"]["name"], r["role"]) for r in rows} == {
        ("DeepLoom", "owner"),
        ("Hangzhou office", "auditor"),
    }


def test_team_page_invites_removes_and_accepts(owner, org, django_capture_on_commit_callbacks):
    client = Client()
    client.force_login(owner)
    page = client.get("/organization/")
    assert page.status_code == 200 and "DeepLoom" in page.content.decode()
    # a bad address is shown in place
    bad = client.post(f"/organization/{org.pk}/invitations/", {"email": "nope", "role": "member"})
    assert bad.status_code == 400 and not Invitation.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(f"/organization/{org.pk}/invitations/", {"email": "pat@example.cn", "role": "member"})
    assert sent.status_code == 302
    # the invitee opens the link, creates an account, is signed in and sees the team
    invitee = Client()
    path = f"/invitations/{token_in(mail.outbox[0])}/"
    assert "DeepLoom" in invitee.get(path).content.decode()
    joined = invitee.post(path, {"username": "pat", "password": "a-fine-pass-2026", "password2": "a-fine-pass-2026"})
    assert joined.status_code == 302 and joined.url == "/organization/"
    assert "pat" in invitee.get("/organization/").content.decode()
    # the owner removes pat; the last owner's leave is refused with a message
    pat = User.objects.get(username="pat")
    assert client.post(f"/organization/{org.pk}/members/{pat.pk}/remove/").status_code == 302
    client.post(f"/organization/{org.pk}/members/{owner.pk}/remove/")
    assert Membership.objects.filter(organization=org).count() == 1
    assert "needs an owner" in client.get("/organization/").content.decode()
