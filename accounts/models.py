"""Organizations (startup, provider, issuer, platform) and who belongs to them."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Upper

from accounts.validators import validate_credit_code
from marketplace.core.models import TimeStampedModel

CITIES = [
    "Shanghai", "Beijing", "Hangzhou", "Shenzhen", "Chengdu", "Wuhan", "Tianjin", "Suzhou", "Nanjing",
    "Guangzhou", "Chongqing", "Hefei", "Xi'an", "Wuhu", "Kunming", "Ningbo", "Qingdao",
]  # fmt: skip
CITY_CHOICES = [(city, city) for city in CITIES]


class Organization(TimeStampedModel):
    class Kind(models.TextChoices):
        STARTUP = "startup", "Startup"
        PROVIDER = "provider", "Compute provider"
        ISSUER = "issuer", "Voucher issuer (city)"
        PLATFORM = "platform", "Platform operator"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200, unique=True)
    city = models.CharField(max_length=32, choices=CITY_CHOICES)
    credit_code = models.CharField(
        "unified social credit code", max_length=18, unique=True, validators=[validate_credit_code]
    )
    legal_representative = models.CharField(max_length=100, blank=True)
    # Names of beneficial owners; with the legal representative they decide related-party deals.
    owners = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    is_sme = models.BooleanField("startup / SME", default=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["startup", "provider", "issuer", "platform"]), name="org_kind_valid"
            ),
            models.CheckConstraint(condition=models.Q(credit_code=Upper("credit_code")), name="org_credit_code_upper"),
        ]

    def __str__(self):
        return self.name

    def related_party_names(self) -> set[str]:
        """Normalised names of the people behind this organization (owners and legal representative)."""
        names = {*self.owners, self.legal_representative}
        return {" ".join(name.split()).casefold() for name in names if name and name.strip()}


class ModelFiling(TimeStampedModel):
    """A generative-AI model registered with the Cyberspace Administration (备案); some voucher programs require one."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="model_filings")
    filing_number = models.CharField(max_length=64, unique=True)
    model_name = models.CharField(max_length=120)
    registered_on = models.DateField()

    class Meta:
        ordering = ["-registered_on"]

    def __str__(self):
        return f"{self.model_name} ({self.filing_number})"


class Membership(TimeStampedModel):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"
        AUDITOR = "auditor", "Auditor"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        ordering = ["organization__name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user_org"),
            models.CheckConstraint(
                condition=models.Q(role__in=["owner", "member", "auditor"]), name="membership_role_valid"
            ),
        ]

    def __str__(self):
        return f"{self.user} @ {self.organization} ({self.role})"
