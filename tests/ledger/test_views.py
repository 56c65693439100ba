"""The wallet page, and the deposits page of platform staff."""

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from ledger.models import Entry
from ledger.selectors import ledger_breaches, wallet_summary
from tests import factories
from tests.factories import PASSWORD
from tests.ledger.factories import funded_wallet


def _login(client, organization):
    user = factories.member_of(organization)
    assert client.login(username=user.username, password=PASSWORD)
    return user


@pytest.mark.django_db
def test_the_wallet_page_shows_balance_held_and_history(client, startup):
    # given
    _login(client, startup)
    for amount in range(1, 28):
        funded_wallet(startup.pk, f"{amount}.00")
    # when
    page = client.get("/wallet/")
    older = client.get("/wallet/?page=2", HTTP_HX_REQUEST="true")
    # then
    html = page.content.decode()
    assert page.status_code == 200
    assert '<strong id="wallet-balance">¥378.00</strong>' in html
    assert "Page 1 of 2" in html
    assert older.status_code == 200
    assert "<html" not in older.content.decode()  # htmx gets the table only
    assert "Page 2 of 2" in older.content.decode()


@pytest.mark.django_db
def test_an_empty_wallet_says_what_happens_next(client, startup):
    # given
    _login(client, startup)
    # when
    html = client.get("/wallet/").content.decode()
    # then
    assert "No money has moved yet" in html


@pytest.mark.django_db
def test_non_startup_members_get_an_explanation(client, provider):
    # given
    _login(client, provider)
    # when
    response = client.get("/wallet/")
    # then
    assert response.status_code == 403
    assert "Wallets belong to startups" in response.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client):
    assert client.get("/wallet/")["Location"].startswith("/login/")


# --- deposits (platform staff) --------------------------------------------------------------------------------------


def _deposit(client, startup, amount="2500.00", reference="ICBC-20261129-001"):
    return client.post("/deposits/", {"organization": startup.pk, "amount": amount, "reference": reference})


@pytest.mark.django_db
def test_staff_record_a_bank_transfer_once_and_see_it_listed(client, startup, platform_org):
    # given a platform staff member on the deposits page
    _login(client, platform_org)
    assert client.get("/deposits/").status_code == 200
    # when the transfer is recorded, then recorded again (a double submit)
    first = _deposit(client, startup)
    second = _deposit(client, startup)
    # then the wallet is credited once, audited once, and the list names the startup and the bank reference
    assert first.status_code == 302 and second.status_code == 302
    assert wallet_summary(startup.pk)["balance"] == Decimal("2500.00")
    assert AuditEvent.objects.filter(action="wallet.deposit", organization_id=startup.pk).count() == 1
    html = client.get("/deposits/").content.decode()
    assert startup.name in html and "ICBC-20261129-001" in html and "¥2,500.00" in html
    assert "bank:ICBC" not in html
    assert "already recorded: nothing changed" in html  # the second submit's message
    assert ledger_breaches() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "post"),
    [
        ("amount", {"amount": "0.00"}),
        ("amount", {"amount": "12.345"}),
        ("reference", {"reference": ""}),
        ("organization", {"organization": "999999"}),
        ("reference", {"amount": "99.00"}),  # the same bank reference with another amount
    ],
)
def test_a_refused_deposit_is_shown_on_the_form_and_writes_nothing(client, startup, platform_org, field, post):
    # given a recorded transfer ICBC-1 of 100.00
    _login(client, platform_org)
    _deposit(client, startup, amount="100.00", reference="ICBC-1")
    entries = Entry.objects.count()
    # when a bad deposit is posted
    response = client.post(
        "/deposits/", {"organization": startup.pk, "amount": "100.00", "reference": "ICBC-1", **post}
    )
    # then the form comes back (400) with the field's error, and the ledger is unchanged
    assert response.status_code == 400
    assert response.context["form"].errors.get(field)
    assert Entry.objects.count() == entries
    assert wallet_summary(startup.pk)["balance"] == Decimal("100.00")


@pytest.mark.django_db
def test_only_staff_reach_the_deposits_page(client, startup, provider):
    # given a provider member and a startup member / when they open or post to the page / then 403, nothing written
    for organization in (startup, provider):
        client.logout()
        _login(client, organization)
        assert client.get("/deposits/").status_code == 403
        assert _deposit(client, startup).status_code == 403
    assert wallet_summary(startup.pk)["balance"] == Decimal("0.00")
