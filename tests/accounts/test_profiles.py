"""Organization profiles (issue 19): counter-parties see the public profile; members and staff see it whole."""

import pytest

from tests import factories

pytestmark = pytest.mark.django_db
PRIVATE = ("credit_code", "legal_representative", "owners")


def test_another_organization_sees_the_public_profile_only(startup_client, provider):
    response = startup_client.get(f"/api/v1/organizations/{provider.pk}/")
    assert response.status_code == 200
    assert response.data["name"] == provider.name and response.data["kind"] == "provider"
    assert not set(PRIVATE) & set(response.data)


def test_members_and_staff_see_the_private_fields(startup, startup_client, staff_client):
    for client in (startup_client, staff_client):
        response = client.get(f"/api/v1/organizations/{startup.pk}/")
        assert response.status_code == 200 and response.data["credit_code"] == startup.credit_code


def test_an_unverified_organization_is_nobodys_counter_party(startup_client):
    pending = factories.StartupFactory(verification_status="pending")
    assert startup_client.get(f"/api/v1/organizations/{pending.pk}/").status_code == 404
    assert startup_client.get("/api/v1/organizations/99999999/").status_code == 404


def test_the_profile_page_shows_a_providers_data_centres_and_hides_the_credit_code(client, startup, provider):
    listing = factories.ListingFactory(cluster__data_center__provider=provider)
    client.force_login(factories.member_of(startup))
    html = client.get(f"/organizations/{provider.pk}/").content.decode()
    assert provider.name in html and listing.cluster.data_center.name in html
    assert provider.credit_code not in html
