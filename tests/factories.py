"""factory-boy factories shared by the whole suite."""

import factory
from django.contrib.auth import get_user_model

from accounts.models import Membership, ModelFiling, Organization
from accounts.validators import uscc_check_character

PASSWORD = "test-pass-123"


def credit_code(n: int) -> str:
    first17 = f"91310000MA{n:07d}"
    return first17 + uscc_check_character(first17)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.cn")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    kind = Organization.Kind.STARTUP
    name = factory.Sequence(lambda n: f"Org {n}")
    city = "Shanghai"
    credit_code = factory.Sequence(lambda n: credit_code(n + 1000))
    legal_representative = factory.Sequence(lambda n: f"Rep {n}")
    owners = factory.LazyAttribute(lambda o: [o.legal_representative])


class StartupFactory(OrganizationFactory):
    kind = Organization.Kind.STARTUP
    is_sme = True


class ProviderFactory(OrganizationFactory):
    kind = Organization.Kind.PROVIDER


class IssuerFactory(OrganizationFactory):
    kind = Organization.Kind.ISSUER


class PlatformFactory(OrganizationFactory):
    kind = Organization.Kind.PLATFORM


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(StartupFactory)
    role = Membership.Role.OWNER


class ModelFilingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelFiling

    organization = factory.SubFactory(StartupFactory)
    filing_number = factory.Sequence(lambda n: f"Filing-{n:06d}")
    model_name = factory.Sequence(lambda n: f"Model-{n}")
    registered_on = factory.Faker("date_this_decade")


def member_of(org: Organization, role: str = Membership.Role.OWNER, **user_kwargs):
    """A new user who is a member of ``org`` with ``role``."""
    return MembershipFactory(organization=org, role=role, user=UserFactory(**user_kwargs)).user
