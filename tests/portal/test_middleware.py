"""Under ``DEBUG`` (``make run``) a page that is not found is the site's own 404 page, never Django's technical one
(the URLconf listing); the API keeps its JSON 404."""

import pytest
from django.test import Client

from tests import factories
from tests.vouchers.factories import VoucherProgramFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(startup) -> Client:
    client = Client()
    client.force_login(factories.member_of(startup))
    return client


@pytest.fixture
def debug(settings):
    settings.DEBUG = True
    return settings


@pytest.mark.parametrize("path", ["/no-such-page/", "/vouchers/programs/999999/"])
def test_a_missing_page_is_the_sites_own_404_under_debug(member, debug, path):
    # when an unknown path (no route) or a missing object (Http404 from the view) is asked for
    response = member.get(path)
    # then 404 with the site's page: its layout, no URLconf listing or "Raised by"
    html = response.content.decode()
    assert response.status_code == 404
    assert '<link rel="icon"' in html and "GPU compute exchange" in html
    assert "Using the URLconf" not in html and "Raised by" not in html and "DEBUG = True" not in html
    # and a sentence, not the exception's class name
    assert "There is no page at this address" in html
    assert "Http404" not in html and "Resolver404" not in html


@pytest.mark.parametrize("debug_on", [False, True])
def test_an_unrouted_address_says_so_in_the_readers_language(member, settings, debug_on):
    # given DEBUG on (make run) or off (production), and a Chinese reader
    settings.DEBUG = debug_on
    # when an address no route matches is asked for
    response = member.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    # then the 404 page says so in Chinese, without Django's "Resolver404"
    html = response.content.decode()
    assert response.status_code == 404
    assert "此地址没有页面" in html
    assert "Resolver404" not in html and "Http404" not in html


def test_pages_that_exist_and_the_api_are_unchanged_under_debug(client, member, debug):
    program = VoucherProgramFactory()
    assert member.get(f"/vouchers/programs/{program.pk}/").status_code == 200
    response = client.get("/api/v1/no-such-route/")
    assert response.status_code == 404 and response["Content-Type"].startswith("application/json")
