"""The wallet page."""

import pytest

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
    assert '<strong id="wallet-balance">378.00 CNY</strong>' in html
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
