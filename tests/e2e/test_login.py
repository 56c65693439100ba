import pytest

from tests import factories
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_member_logs_in_and_sees_their_organization(page, screenshot):
    # given a startup member
    startup = factories.StartupFactory(name="DeepLoom AI")
    user = factories.member_of(startup, username="alice")
    # when they log in through the form
    log_in(page, user.username, factories.PASSWORD)
    # then the dashboard lists their organization and role
    assert page.get_by_role("cell", name="DeepLoom AI").is_visible()
    assert page.get_by_text("alice").first.is_visible()
    screenshot("home")


def test_a_wrong_password_shows_the_error_in_place(page):
    factories.UserFactory(username="bob")
    page.goto("/login/")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill("wrong")
    page.locator("main").get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").is_visible()
    assert "correct username and password" in page.get_by_role("alert").inner_text()
