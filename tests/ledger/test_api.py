"""Wallet API: balances and history for startup members; deposits recorded by platform staff."""

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from ledger.models import JournalTransaction
from ledger.selectors import wallet_summary
from ledger.services import wallet_hold
from tests import factories
from tests.ledger.factories import funded_wallet, key

DEPOSITS = "/api/v1/wallet/deposits/"


@pytest.mark.django_db
def test_a_startup_member_sees_the_wallet(startup, startup_client):
    # given
    funded_wallet(startup.pk, "100.00")
    wallet_hold(organization_id=startup.pk, amount=Decimal("40"), idempotency_key=key())
    # when
    response = startup_client.get("/api/v1/wallet/")
    # then
    assert response.status_code == 200, response.content
    assert response.json() == {"organization": startup.pk, "currency": "CNY", "balance": "60.00", "held": "40.00"}


@pytest.mark.django_db
def test_a_member_of_two_startups_picks_one_with_the_header(startup, startup_client, client_for):
    # given
    other = factories.StartupFactory()
    factories.MembershipFactory(user=startup_client.user, organization=other)
    funded_wallet(other.pk, "5.00")
    # when
    ambiguous = startup_client.get("/api/v1/wallet/")
    chosen = startup_client.get("/api/v1/wallet/", HTTP_X_ORGANIZATION=str(other.pk))
    # then
    assert ambiguous.status_code == 400
    assert "organization" in ambiguous.json()["errors"]
    assert chosen.json()["balance"] == "5.00"


@pytest.mark.django_db
def test_the_wallet_is_for_startup_members_only(provider_client, staff_client, api):
    assert provider_client.get("/api/v1/wallet/").status_code == 403
    assert staff_client.get("/api/v1/wallet/").status_code == 403
    assert api.get("/api/v1/wallet/").status_code in (401, 403)


@pytest.mark.django_db
def test_wallet_entries_are_paginated_newest_first(startup, startup_client):
    # given
    for amount in ("1.00", "2.00", "3.00"):
        funded_wallet(startup.pk, amount)
    funded_wallet(startup.pk + 1000, "9.00")  # someone else's money does not show
    # when
    response = startup_client.get("/api/v1/wallet/entries/?page_size=2")
    # then
    body = response.json()
    assert body["count"] == 3 and body["next"]
    assert [(r["account"], r["amount"], r["balance_after"], r["kind"]) for r in body["results"]] == [
        ("wallet", "3.00", "6.00", "deposit"),
        ("wallet", "2.00", "3.00", "deposit"),
    ]


@pytest.mark.django_db
def test_staff_record_a_deposit(startup, staff_client):
    # when
    response = staff_client.post(DEPOSITS, {"organization": startup.pk, "amount": "1500.50", "reference": "TX-1"})
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["reference"], body["wallet"]["balance"]) == ("1500.50", "TX-1", "1500.50")
    assert wallet_summary(startup.pk)["balance"] == Decimal("1500.50")
    event = AuditEvent.objects.get(action="wallet.deposit")
    assert (event.organization_id, event.actor_id) == (startup.pk, staff_client.user.pk)
    assert event.data == {"amount": "1500.50", "reference": "TX-1"}


@pytest.mark.django_db
def test_the_same_bank_transfer_is_credited_once(startup, staff_client):
    # given
    staff_client.post(DEPOSITS, {"organization": startup.pk, "amount": "100.00", "reference": "TX-9"})
    # when
    again = staff_client.post(DEPOSITS, {"organization": startup.pk, "amount": "100.00", "reference": "TX-9"})
    other_amount = staff_client.post(DEPOSITS, {"organization": startup.pk, "amount": "200.00", "reference": "TX-9"})
    # then
    assert again.status_code == 200
    assert other_amount.status_code == 409
    assert "reference" in other_amount.json()["errors"]
    assert wallet_summary(startup.pk)["balance"] == Decimal("100.00")
    assert AuditEvent.objects.filter(action="wallet.deposit").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"amount": "-5.00", "reference": "TX"}, "amount"),
        ({"amount": "0.00", "reference": "TX"}, "amount"),
        ({"amount": "1.005", "reference": "TX"}, "amount"),
        ({"amount": "ten", "reference": "TX"}, "amount"),
        ({"reference": "TX"}, "amount"),
        ({"amount": "5.00"}, "reference"),
        ({"amount": "5.00", "reference": "TX", "organization": None}, "organization"),
        ({"amount": "5.00", "reference": "TX", "organization": 10**9}, "organization"),
    ],
)
def test_bad_deposit_input_is_400_with_field_errors_and_writes_nothing(startup, staff_client, payload, field):
    # given
    payload = {"organization": startup.pk, **payload}
    # when
    response = staff_client.post(DEPOSITS, payload)
    # then
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert JournalTransaction.objects.count() == 0


@pytest.mark.django_db
def test_deposits_go_to_startups_only(provider, staff_client):
    # when
    response = staff_client.post(DEPOSITS, {"organization": provider.pk, "amount": "5.00", "reference": "TX"})
    # then
    assert response.status_code == 400
    assert response.json()["errors"] == {"organization": ["No startup organization with this id."]}
    assert JournalTransaction.objects.count() == 0


@pytest.mark.django_db
def test_only_platform_staff_record_deposits(startup, startup_client, auditor_client, issuer_client):
    # given
    payload = {"organization": startup.pk, "amount": "5.00", "reference": "TX"}
    # when
    statuses = [c.post(DEPOSITS, payload).status_code for c in (startup_client, auditor_client, issuer_client)]
    # then
    assert statuses == [403, 403, 403]
    assert JournalTransaction.objects.count() == 0
