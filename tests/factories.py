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
    # Set up by the platform, as the demo's: verified (a sign-up starts pending; tests/accounts cover that).
    verification_status = Organization.VerificationStatus.VERIFIED


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
    status = ModelFiling.Status.VERIFIED


def member_of(org: Organization, role: str = Membership.Role.OWNER, **user_kwargs):
    """A new user who is a member of ``org`` with ``role``."""
    return MembershipFactory(organization=org, role=role, user=UserFactory(**user_kwargs)).user


# --- listings -------------------------------------------------------------------------------------------------
import datetime as dt  # noqa: E402
from decimal import Decimal  # noqa: E402

from listings.models import Accelerator, Cluster, DataCenter, Listing, Node  # noqa: E402
from marketplace.core.hours import next_hour  # noqa: E402 - tests import it from here


class AcceleratorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Accelerator
        django_get_or_create = ["slug"]

    slug = factory.Sequence(lambda n: f"chip-{n}")
    name = factory.LazyAttribute(lambda a: a.slug.upper())
    vendor = "NVIDIA"
    memory_gb = 80
    bf16_tflops = Decimal("989.0")
    domestic = False
    export_controlled = False


class DataCenterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataCenter

    provider = factory.SubFactory(ProviderFactory)
    name = factory.Sequence(lambda n: f"DC {n}")
    city = factory.LazyAttribute(lambda d: d.provider.city)
    operator = DataCenter.Operator.STATE
    region = "Yangtze River Delta"


class ClusterFactory(factory.django.DjangoModelFactory):
    """A cluster with its ``Node`` rows (1..node_count)."""

    class Meta:
        model = Cluster
        skip_postgeneration_save = True

    data_center = factory.SubFactory(DataCenterFactory)
    name = factory.Sequence(lambda n: f"Cluster {n}")
    accelerator = factory.SubFactory(AcceleratorFactory)
    gpus_per_node = 8
    node_count = 4
    interconnect = "400G InfiniBand"

    @factory.post_generation
    def nodes(obj, create, extracted, **kwargs):
        if create:
            Node.objects.bulk_create(Node(cluster=obj, index=i) for i in range(1, obj.node_count + 1))


class ListingFactory(factory.django.DjangoModelFactory):
    """An active listing open from the next hour for 30 days."""

    class Meta:
        model = Listing

    cluster = factory.SubFactory(ClusterFactory)
    price_per_gpu_hour = Decimal("10.0000")
    available_from = factory.LazyFunction(lambda: next_hour(1))
    available_until = factory.LazyAttribute(lambda o: o.available_from + dt.timedelta(days=30))
    min_hours = 1
    status = Listing.Status.ACTIVE
