"""The site's icon: linked from every page and answered at /favicon.ico, from the site itself (CSP: self only)."""

import pytest
from django.test import Client


@pytest.mark.django_db
def test_pages_link_the_svg_icon_and_favicon_ico_redirects_to_it():
    client = Client()
    html = client.get("/login/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.svg"
