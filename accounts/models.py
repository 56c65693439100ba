"""Organizations (startup, provider, issuer, platform), who belongs to them, and invitations to join."""

import datetime as dt
import hashlib

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.validators import validate_credit_code
from marketplace.core.models import TimeStampedModel
from marketplace.core.pipeline import StatusPipeline

CITIES = [
    "Shanghai", "Beijing", "Hangzhou", "Shenzhen", "Chengdu", "Wuhan", "Tianjin", "Suzhou", "Nanjing",
    "Guangzhou", "Chongqing", "Hefei", "Xi'an", "Wuhu", "Kunming", "Ningbo", "Qingdao",
]  # fmt: skip
# The names people read, in their language (the stored value stays the English name).
CITY_LABELS = {
    "Shanghai": _("Shanghai"),
    "Beijing": _("Beijing"),
    "Hangzhou": _("Hangzhou"),
    "Shenzhen": _("Shenzhen"),
    "Chengdu": _("Chengdu"),
    "Wuhan": _("Wuhan"),
    "Tianjin": _("Tianjin"),
    "Suzhou": _("Suzhou"),
    "Nanjing": _("Nanjing"),
    "Guangzhou": _("Guangzhou"),
    "Chongqing": _("Chongqing"),
    "Hefei": _("Hefei"),
    "Xi'an": _("Xi'an"),
    "Wuhu": _("Wuhu"),
    "Kunming": _("Kunming"),
    "Ningbo": _("Ningbo"),
    "Qingdao": _("Qingdao"),
}
CITY_CHOICES = [(city, CITY_LABELS.get(city, city)) for city in CITIES]


class VerificationStatus(models.TextChoices):
    PENDING = "pending", _("Pending verification")
    VERIFIED = "verified", _("Verified")
    REJECTED = "rejected", _("Rejected")


class Organization(TimeStampedModel):
    class Kind(models.TextChoices):
        STARTUP = "startup", _("Startup")
        PROVIDER = "provider", _("Compute provider")
        ISSUER = "issuer", _("Voucher issuer (city)")
        PLATFORM = "platform", _("Platform operator")

    VerificationStatus = VerificationStatus

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
    # Platform staff verify an organization before it may book, bid, list or apply for vouchers
    # (``accounts.selectors.acting_organization(for_write=True)``). New rows are pending, whoever creates them.
    verification_status = models.CharField(
        max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.PENDING, db_index=True
    )
    verification_reason = models.TextField("reason for the decision", blank=True)
    verification_decided_at = models.DateTimeField(null=True, blank=True)
    verification_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The business licence (营业执照) staff check before verifying: PDF, PNG or JPEG by content, at most 5 MB
    # (``accounts.licences``); served only to the organization's members and platform staff, never as a public URL.
    business_licence = models.FileField(upload_to="licences/%Y/%m/", blank=True, max_length=200)
    business_licence_type = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["startup", "provider", "issuer", "platform"]), name="org_kind_valid"
            ),
            models.CheckConstraint(condition=models.Q(credit_code=Upper("credit_code")), name="org_credit_code_upper"),
            models.CheckConstraint(
                condition=models.Q(verification_status__in=["pending", "verified", "rejected"]),
                name="org_verification_status_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(verification_status="rejected") | ~models.Q(verification_reason=""),
                name="org_rejection_has_reason",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_verified(self) -> bool:
        return self.verification_status == VerificationStatus.VERIFIED

    def related_party_names(self) -> set[str]:
        """Normalised names of the people behind this organization (owners and legal representative)."""
        names = {*self.owners, self.legal_representative}
        return {" ".join(name.split()).casefold() for name in names if name and name.strip()}


class ModelFiling(StatusPipeline, TimeStampedModel):
    """A generative-AI model registered with the Cyberspace Administration (备案); some voucher programs require one.

    A startup records it; platform staff or a city issuer checks it against the public registry and marks it
    verified or rejected. Only a verified filing whose validity has not ended counts for a program's rules."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("model filing status", "Pending check")
        VERIFIED = "verified", pgettext_lazy("model filing status", "Verified")
        REJECTED = "rejected", pgettext_lazy("model filing status", "Rejected")

    TRANSITIONS = {
        Status.PENDING: frozenset({Status.VERIFIED, Status.REJECTED}),
        Status.VERIFIED: frozenset({Status.REJECTED}),  # withdrawn from the registry later
        Status.REJECTED: frozenset(),
    }

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="model_filings")
    filing_number = models.CharField(max_length=64, unique=True)
    model_name = models.CharField(max_length=120)
    registered_on = models.DateField()
    valid_until = models.DateField(null=True, blank=True, help_text="empty: no end date")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-registered_on"]

    def __str__(self):
        return f"{self.model_name} ({self.filing_number})"


class Membership(TimeStampedModel):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        MEMBER = "member", _("Member")
        AUDITOR = "auditor", _("Auditor")

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


from accounts.preferences import UserPreference  # noqa: E402, F401 - a model of this app, kept in its own module


def invitation_token_hash(token: str) -> str:
    """Invitations store the SHA-256 of their token; the token itself is only in the e-mail."""
    return hashlib.sha256(token.encode()).hexdigest()


class Invitation(TimeStampedModel):
    """An owner's invitation of an e-mail address to join ``organization`` with ``role`` (accepted at most once)."""

    VALID_FOR = dt.timedelta(days=7)

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        REVOKED = "revoked", _("Revoked")

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    expires_at = models.DateTimeField()
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "accepted", "revoked"]), name="invitation_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=["owner", "member", "auditor"]), name="invitation_role_valid"
            ),
        ]

    def __str__(self):
        return f"{self.email} → {self.organization} ({self.role})"


class SshPublicKey(TimeStampedModel):
    """An SSH public key of a buyer organization: the provider agent installs its organization's keys on the booked
    nodes when a booking starts and removes them when it ends (``accounts.keys``).

    ``public_key`` is the validated ``<type> <base64>`` only (no options, no comment: what the agent rebuilds each
    line from); ``fingerprint`` is OpenSSH's ``SHA256:…`` of the key body, unique per organization.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="ssh_keys")
    name = models.CharField(max_length=80)
    key_type = models.CharField(max_length=32)
    bits = models.PositiveIntegerField(null=True, blank=True)
    public_key = models.TextField()
    fingerprint = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["organization", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "fingerprint"], name="sshkey_unique_per_org"),
            models.CheckConstraint(
                condition=models.Q(
                    key_type__in=[
                        "ssh-ed25519",
                        "ssh-rsa",
                        "ecdsa-sha2-nistp256",
                        "ecdsa-sha2-nistp384",
                        "ecdsa-sha2-nistp521",
                    ]
                ),
                name="sshkey_type_allowed",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.fingerprint})"


class ApiToken(TimeStampedModel):
    """A named API token of a user: sent as ``Authorization: Token <token>`` (``accounts.authentication``).

    Only the SHA-256 of the token is stored (it is shown once, when created); ``prefix`` is its first characters, so
    its owner can tell tokens apart. A token past ``expires_at`` or with ``revoked_at`` set is refused (401).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "revoked_at"], name="apitoken_user_idx")]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"
