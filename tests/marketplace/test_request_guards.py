"""Malformed requests get a 4xx with the error shape, never a 500 (issue 23, items 1, 3, 4 and 6)."""

import pytest

from tests import factories

pytestmark = pytest.mark.django_db

JSON_POSTS = [
    ("api", "/api/v1/auth/token/"),
    ("startup_client", "/api/v1/quotes/"),
    ("startup_client", "/api/v1/bookings/"),
    ("startup_client", "/api/v1/bids/"),
    ("issuer_client", "/api/v1/voucher-programs/"),
]


@pytest.mark.parametrize(("client_name", "path"), JSON_POSTS)
def test_deeply_nested_json_is_400(request, client_name, path):
    # given 5,000 nested lists (10 kB), which made DRF's parser raise RecursionError
    client = request.getfixturevalue(client_name)
    body = "[" * 5000 + "]" * 5000
    # when
    response = client.post(path, body, content_type="application/json")
    # then
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_nesting_within_the_limit_still_parses(startup_client):
    body = '{"listing": ' + "[" * 20 + "]" * 20 + "}"
    response = startup_client.post("/api/v1/quotes/", body, content_type="application/json")
    assert response.status_code == 400
    assert "listing" in response.json()["errors"]  # reached the view: a field error, not a parse error


def test_an_oversized_body_is_413_before_parsing(startup_client, settings):
    settings.API_MAX_BODY_BYTES = 1000
    response = startup_client.post(
        "/api/v1/quotes/", '{"purpose": "' + "x" * 2000 + '"}', content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["errors"] == {}


def test_nan_is_not_json(startup_client):
    response = startup_client.post("/api/v1/quotes/", '{"nodes": NaN}', content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/market/depth/?accelerator=a%00b",
        "/api/v1/voucher-applications/?status=%00",
        "/api/v1/listings/?city=Shang%00hai",
    ],
)
def test_a_nul_byte_in_an_api_query_is_400(startup_client, url):
    response = startup_client.get(url)
    assert response.status_code == 400
    assert response.json() == {"detail": "A parameter contains a NUL character.", "errors": {}}


def test_a_nul_byte_in_a_page_query_is_400(client):
    # given an auditor's page
    user = factories.member_of(factories.PlatformFactory())
    client.force_login(user)
    # when
    response = client.get("/audit/events/?action=%00")
    # then the site's error page, not a 500
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_an_application_error_on_a_page_answers_its_status(client):
    # given a provider member naming an organization that is not a number
    user = factories.member_of(factories.ProviderFactory())
    client.force_login(user)
    # when
    response = client.get("/provider/?organization=abc")
    # then 400 on the error page, with the reason
    assert response.status_code == 400
    assert "cannot act for that organization" in response.content.decode()


def test_flag_review_by_a_startup_member_is_refused_not_500(client):
    user = factories.member_of(factories.StartupFactory())
    client.force_login(user)
    response = client.post("/audit/flags/999999/review/", {"decision": "dismiss", "note": "x"})
    assert response.status_code in (403, 404)


@pytest.mark.parametrize("bad_id", [1.5, "1.5", True, "1e3", 10**30])
def test_a_non_integer_or_huge_related_id_is_a_field_error(provider_client, bad_id):
    # given the provider's data centre
    from listings.models import Cluster, DataCenter

    provider = provider_client.user.memberships.get().organization
    dc = DataCenter.objects.create(provider=provider, name="DC", city="Hefei", operator="state")
    body = {
        "data_center": bad_id if bad_id != 1.5 else dc.pk + 0.5,
        "name": "C",
        "accelerator": "rtx-4090",
        "gpus_per_node": 8,
        "node_count": 2,
    }
    # when
    response = provider_client.post("/api/v1/clusters/", body, format="json")
    # then a field error and no cluster (1.5 was read as data centre 1 before)
    assert response.status_code == 400, response.json()
    assert "data_center" in response.json()["errors"]
    assert not Cluster.objects.exists()


# --- the guards answer in the reader's language (they run before LocaleMiddleware) ------------------------------


def test_the_nul_refusal_is_in_the_language_the_request_asks_for(startup_client):
    chinese = startup_client.get("/api/v1/listings/?city=Shang%00hai", HTTP_ACCEPT_LANGUAGE="zh-CN")
    startup_client.cookies["gpux_language"] = "en"  # the cookie wins over Accept-Language, as on every page
    english = startup_client.get("/api/v1/listings/?city=Shang%00hai", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert chinese.status_code == english.status_code == 400
    assert chinese.json() == {"detail": "参数中含有 NUL 字符。", "errors": {}}
    assert english.json()["detail"] == "A parameter contains a NUL character."


def test_the_size_refusal_is_in_chinese_for_a_chinese_reader(startup_client, settings):
    settings.API_MAX_BODY_BYTES = 1000
    response = startup_client.post(
        "/api/v1/quotes/",
        '{"purpose": "' + "x" * 2000 + '"}',
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9",
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "请求体超过 1000 字节。", "errors": {}}


def test_a_page_refusal_is_in_chinese_too(client):
    client.force_login(factories.member_of(factories.PlatformFactory()))
    client.cookies["gpux_language"] = "zh-hans"
    response = client.get("/audit/events/?action=%00")
    assert response.status_code == 400
    assert "参数中含有 NUL 字符。" in response.content.decode()
