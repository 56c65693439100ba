import pytest

from accounts import selectors
from accounts.models import Organization
from marketplace.core.exceptions import ApplicationError
from tests import factories

pytestmark = pytest.mark.django_db


def test_acting_organization_picks_the_only_one(startup):
    user = factories.member_of(startup)
    assert selectors.acting_organization(user, kind=Organization.Kind.STARTUP) == startup


def test_acting_organization_without_membership_is_403(provider):
    user = factories.member_of(provider)
    with pytest.raises(ApplicationError) as excinfo:
        selectors.acting_organization(user, kind=Organization.Kind.STARTUP)
    assert excinfo.value.status == 403


def test_acting_organization_ambiguous_needs_a_choice():
    # given a user in two startups
    first, second = factories.StartupFactory(), factories.StartupFactory()
    user = factories.member_of(first)
    factories.MembershipFactory(user=user, organization=second)
    # when no organization is named / then 400 naming the field
    with pytest.raises(ApplicationError) as excinfo:
        selectors.acting_organization(user, kind="startup")
    assert excinfo.value.status == 400 and "organization" in excinfo.value.errors
    # when one is named / then that one
    assert selectors.acting_organization(user, kind="startup", organization_id=second.pk) == second


def test_acting_organization_refuses_someone_elses(startup):
    user = factories.member_of(startup)
    other = factories.StartupFactory()
    with pytest.raises(ApplicationError) as excinfo:
        selectors.acting_organization(user, kind="startup", organization_id=other.pk)
    assert excinfo.value.errors == {"organization": ["Not a startup organization you belong to."]}


def test_auditors_cannot_act_for_their_organization(platform_org):
    auditor = factories.member_of(platform_org, role="auditor")
    assert selectors.is_auditor(auditor)
    assert not selectors.is_platform_staff(auditor)
    staff = factories.member_of(platform_org, role="member")
    assert selectors.is_platform_staff(staff)
    assert not selectors.is_auditor(staff)


def test_related_party_names_are_normalised():
    org = factories.ProviderFactory(legal_representative="  Zhou   Qiang ", owners=["ZHOU QIANG", "Li Na"])
    assert org.related_party_names() == {"zhou qiang", "li na"}
