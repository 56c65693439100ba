"""Reads about organizations and memberships: who may act for which organization."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone

from accounts.models import Invitation, Membership, Organization, VerificationStatus, invitation_token_hash
from marketplace.core import rows
from marketplace.core.exceptions import ApplicationError

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
            f"Only members of a {kind} organization can do this.", status=403, code="permission_denied"
        )
    if organization_id not in (None, ""):
        for org in orgs:
            if str(org.pk) == str(organization_id):
                return require_verified(org) if for_write else org
        raise ApplicationError(
            "You cannot act for that organization.",
            errors={"organization": [f"Not a {kind} organization you belong to."]},
        )
    if len(orgs) > 1:
        raise ApplicationError(
            "You belong to several organizations: name one.",
            errors={"organization": ["Send the X-Organization header with its id."]},
        )
    return require_verified(orgs[0]) if for_write else orgs[0]


def unverified_reason(org: Organization) -> str | None:
    """Why ``org`` may not write yet (``None`` when it is verified)."""
    if org.verification_status == VerificationStatus.VERIFIED:
        return None
    if org.verification_status == VerificationStatus.REJECTED:
        return (
            f"{org.name} was not verified by platform staff ({org.verification_reason.strip().rstrip('.')}): "
            "it cannot book, bid, list capacity or apply for vouchers."
        )
    return (
        f"{org.name} is pending verification by platform staff: it can browse, but cannot book, bid, "
        "list capacity or apply for vouchers until it is verified."
    )


def require_verified(org: Organization) -> Organization:
    """``org``, or ``ApplicationError`` 403 (code ``organization_not_verified``) with the reason."""
    reason = unverified_reason(org)
    if reason:
        raise ApplicationError(reason, status=403, code="organization_not_verified")
    return org


def _acting_organizations_of_kind(user, kind: str) -> list[Organization]:
    """``list(user_organizations(user, kind=kind))``, by name. Written out (``marketplace.core.rows``): every API
    write asks it, and compiling the ORM's join costs more than running it. A membership is unique per (user,
    organization), so the join needs no DISTINCT."""
    if not user.is_authenticated:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {rows.columns(Organization, 'o')} FROM {Organization._meta.db_table} o "  # noqa: S608
            f"JOIN {Membership._meta.db_table} m ON m.organization_id = o.id "
            "WHERE m.user_id = %s AND m.role = ANY(%s) AND o.kind = %s ORDER BY o.name",
            [user.pk, [str(role) for role in ACTING_ROLES], kind],
        )
        return [rows.instance(Organization, row) for row in cursor.fetchall()]


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
