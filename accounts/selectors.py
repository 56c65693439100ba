"""Reads about organizations and memberships: who may act for which organization."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import (
    Invitation,
    Membership,
    ModelFiling,
    Organization,
    VerificationStatus,
    invitation_token_hash,
)
from marketplace.core.exceptions import ApplicationError, NotFound

ACTING_ROLES = (Membership.Role.OWNER, Membership.Role.MEMBER)
# Who reads an issuer's audit data (its programs' spend, events, flags): its members and its auditors.
AUDIT_READ_ROLES = (*ACTING_ROLES, Membership.Role.AUDITOR)


def user_memberships(user) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user=user).select_related("organization")


def user_organizations(user, *, kind: str | None = None, roles=ACTING_ROLES) -> QuerySet[Organization]:
    """Organizations ``user`` belongs to with one of ``roles`` (by default the roles that may act, not auditors)."""
    if not user.is_authenticated:
        return Organization.objects.none()
    qs = Organization.objects.filter(memberships__user=user, memberships__role__in=roles)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.distinct()


def has_org_kind(user, kind: str, *, roles=ACTING_ROLES) -> bool:
    return user_organizations(user, kind=kind, roles=roles).exists()


def audited_issuers(user) -> QuerySet[Organization]:
    """The issuer organizations whose programs ``user`` may audit: those it belongs to as member or auditor."""
    return user_organizations(user, kind=Organization.Kind.ISSUER, roles=AUDIT_READ_ROLES)


def is_platform_staff(user) -> bool:
    """Members of the platform operator review listings and record deposits."""
    return has_org_kind(user, Organization.Kind.PLATFORM)


def is_auditor(user) -> bool:
    """Platform-wide auditors: role ``auditor`` in a platform organization; they read every city's audit data.

    Auditor rights come from the organization that audits: an auditor of an issuer reads what that issuer's members
    read (its own programs), and an "auditor" membership in a startup or provider grants no audit access at all.
    """
    return (
        user_memberships(user)
        .filter(role=Membership.Role.AUDITOR, organization__kind=Organization.Kind.PLATFORM)
        .exists()
    )


def acting_organization(
    user, *, kind: str, organization_id: int | str | None = None, for_write: bool = False
) -> Organization:
    """The organization of ``kind`` that ``user`` acts for.

    With one such organization it is chosen; with several, ``organization_id`` (the ``X-Organization`` header or
    an ``organization`` field) must name one. Raises ``ApplicationError`` 403 when the user has none of that kind,
    400 when the choice is ambiguous or names an organization the user cannot act for.

    ``for_write=True`` (booking, bidding, listing, applying for vouchers …): the organization must also be verified
    by platform staff, else 403 with the reason (``require_verified``). Reads (browse, quote, wallet) pass False.
    """
    orgs = _acting_organizations_of_kind(user, kind)
    if not orgs:
        raise ApplicationError(
            gettext("Only members of a %(kind)s organization can do this.") % {"kind": _kind_words(kind)},
            status=403,
            code="permission_denied",
        )
    if organization_id not in (None, ""):
        for org in orgs:
            if str(org.pk) == str(organization_id):
                return require_verified(org) if for_write else org
        raise ApplicationError(
            gettext("You cannot act for that organization."),
            errors={
                "organization": [gettext("Not a %(kind)s organization you belong to.") % {"kind": _kind_words(kind)}]
            },
        )
    if len(orgs) > 1:
        raise ApplicationError(
            gettext("You belong to several organizations: name one."),
            errors={"organization": [gettext("Send the X-Organization header with its id.")]},
        )
    return require_verified(orgs[0]) if for_write else orgs[0]


def acting_organization_for(
    request, kind: str, *, for_write: bool = False, organization: Organization | int | None = None
) -> Organization:
    """The organization of ``kind`` that ``request``'s user acts for (``acting_organization``), chosen by
    ``organization`` when the caller has it (a form's choice), else by the ``X-Organization`` header (the API) or an
    ``organization`` parameter (pages). Raises as ``acting_organization``."""
    if organization is None:
        organization = (
            request.headers.get("X-Organization") or request.POST.get("organization") or request.GET.get("organization")
        )
    chosen = organization.pk if isinstance(organization, Organization) else organization
    return acting_organization(request.user, kind=kind, organization_id=chosen, for_write=for_write)


def has_valid_model_filing(organization_id: int, *, on: dt.date) -> bool:
    """Whether the organization has a model filing that counts for a program's rules on ``on``: verified by
    platform staff or an issuer, and valid that day."""
    return valid_model_filings(on=on).filter(organization_id=organization_id).exists()


def valid_model_filings(*, on: dt.date) -> QuerySet[ModelFiling]:
    return ModelFiling.objects.filter(status=ModelFiling.Status.VERIFIED).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gte=on)
    )


def model_filings_visible(user) -> QuerySet[ModelFiling]:
    """Filings a user may read: their startups' own; every one for platform staff and issuer members (who check
    them). Newest first."""
    qs = ModelFiling.objects.select_related("organization", "reviewed_by").order_by("-created_at", "-id")
    if can_review_model_filings(user):
        return qs
    return qs.filter(organization__in=user_organizations(user, kind=Organization.Kind.STARTUP))


def can_review_model_filings(user) -> bool:
    """Platform staff and members of an issuer organization check filings against the public registry."""
    return is_platform_staff(user) or has_org_kind(user, Organization.Kind.ISSUER)


def unverified_reason(org: Organization) -> str | None:
    """Why ``org`` may not write yet (``None`` when it is verified)."""
    if org.verification_status == VerificationStatus.VERIFIED:
        return None
    if org.verification_status == VerificationStatus.REJECTED:
        return gettext(
            "%(name)s was not verified by platform staff (%(reason)s): it cannot book, bid, list capacity or apply "
            "for vouchers."
        ) % {"name": org.name, "reason": org.verification_reason.strip().rstrip(".")}
    return gettext(
        "%(name)s is pending verification by platform staff: it can browse, but cannot book, bid, list capacity or "
        "apply for vouchers until it is verified."
    ) % {"name": org.name}


def _kind_words(kind: str) -> str:
    """An organization kind as words ("compute provider"), in the active language."""
    return str(dict(Organization.Kind.choices).get(kind, kind)).lower()


def require_verified(org: Organization) -> Organization:
    """``org``, or ``ApplicationError`` 403 (code ``organization_not_verified``) with the reason."""
    reason = unverified_reason(org)
    if reason:
        raise ApplicationError(reason, status=403, code="organization_not_verified")
    return org


def _acting_organizations_of_kind(user, kind: str) -> list[Organization]:
    """The organizations of ``kind`` that ``user`` acts for, by name (a membership is unique per (user,
    organization), so the join needs no DISTINCT)."""
    if not user.is_authenticated:
        return []
    return list(
        Organization.objects.filter(memberships__user=user, memberships__role__in=ACTING_ROLES, kind=kind).order_by(
            "name"
        )
    )


# --- verification queue and teams -----------------------------------------------------------------------------


def organizations_for_review(*, status: str | None = None) -> QuerySet[Organization]:
    """Organizations for the staff's review queue: pending first (oldest first), then decided (latest first)."""
    qs = Organization.objects.select_related("verification_decided_by").annotate(
        pending_first=Case(
            When(verification_status=VerificationStatus.PENDING, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    )
    if status:
        qs = qs.filter(verification_status=status)
    return qs.order_by("pending_first", "-verification_decided_at", "created_at", "id")


def organization_owners(org: Organization) -> QuerySet:
    return get_user_model().objects.filter(
        memberships__organization=org, memberships__role=Membership.Role.OWNER, is_active=True
    )


def membership_of(user, organization_id) -> Membership | None:
    """``user``'s membership of organization ``organization_id`` (any role), or None."""
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("organization").filter(user=user, organization_id=organization_id).first()


def organization_profile(organization_id, viewer) -> tuple[Organization, bool]:
    """The organization and whether ``viewer`` may see its private fields (credit code, legal representative,
    owners): its own members and platform staff may; other organizations see only the public profile. Raises
    ``NotFound`` for an unknown organization, and for one that is not verified unless the viewer may see it whole
    (a pending or rejected sign-up is nobody's counter-party)."""
    org = Organization.objects.filter(pk=organization_id).first() if str(organization_id).isdigit() else None
    private = org is not None and (is_platform_staff(viewer) or membership_of(viewer, org.pk) is not None)
    if org is None or not (private or org.is_verified):
        raise NotFound(gettext("No such organization."))
    return org, private


def organization_members(org: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=org).select_related("user").order_by("role", "user__username")


def pending_invitations(org: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        organization=org, status=Invitation.Status.PENDING, expires_at__gt=timezone.now()
    ).select_related("invited_by")


def invitation_by_token(token: str) -> Invitation | None:
    """The invitation whose e-mailed token is ``token`` (any status, expired or not), or None."""
    return (
        Invitation.objects.select_related("organization").filter(token_hash=invitation_token_hash(token or "")).first()
    )
