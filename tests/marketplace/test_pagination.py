"""The one pager every list page includes: links keep the filters and change only the page."""

from urllib.parse import parse_qs

from django.core.paginator import Paginator
from django.template.loader import render_to_string
from django.test import RequestFactory


def render_pager(query: str, page_number: int, **extra) -> str:
    request = RequestFactory().get(f"/audit/events/?{query}")
    page = Paginator(range(100), 10).get_page(page_number)
    return render_to_string("includes/pagination.html", {"page": page, "request": request, **extra})


def test_links_keep_the_filters_and_replace_the_page():
    html = render_pager("action=booking.held&organization=7&page=3", 3)
    previous = html.split('href="?', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert parse_qs(previous) == {"action": ["booking.held"], "organization": ["7"], "page": ["2"]}
    assert "Page 3 of 10" in html and "page=4" in html


def test_htmx_target_swap_and_push_are_optional():
    plain = render_pager("", 1)
    assert "hx-" not in plain and "← Previous" not in plain and "Next →" in plain
    swapped = render_pager("", 2, target="#wallet-entries", swap="outerHTML", push=True)
    assert 'hx-target="#wallet-entries"' in swapped and 'hx-swap="outerHTML"' in swapped
    assert 'hx-push-url="true"' in swapped and 'hx-get="?page=1"' in swapped


def test_a_single_page_shows_no_pager():
    request = RequestFactory().get("/")
    page = Paginator(range(5), 10).get_page(1)
    assert render_to_string("includes/pagination.html", {"page": page, "request": request}).strip() == ""
