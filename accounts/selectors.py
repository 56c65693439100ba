"""Reads about organizations and memberships: who may act for which organization."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Membership, Organization
from marketplace.core.exceptions import ApplicationError

ACTING_ROLES = (Membership.Role.OWNER, Membership.Role.MEMBER)


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


def is_platform_staff(user) -> bool:
    """Members of the platform operator review listings and record deposits."""
    return has_org_kind(user, Organization.Kind.PLATFORM)


def is_auditor(user) -> bool:
    """Auditors (role ``auditor`` in any organization) read audit data; platform auditors see everything."""
    return user_memberships(user).filter(role=Membership.Role.AUDITOR).exists()


def acting_organization(user, *, kind: str, organization_id: int | str | None = None) -> Organization:
    """The organization of ``kind`` that ``user`` acts for.

    With one such organization it is chosen; with several, ``organization_id`` (the ``X-Organization`` header or
    an ``organization`` field) must name one. Raises ``ApplicationError`` 403 when the user has none of that kind,
    400 when the choice is ambiguous or names an organization the user cannot act for.
    """
    orgs = list(user_organizations(user, kind=kind))
    if not orgs:
        raise ApplicationError(f"Only members of a {kind} organization can do this.", status=403,
                               code="permission_denied")
    if organization_id not in (None, ""):
        for org in orgs:
            if str(org.pk) == str(organization_id):
                return org
        raise ApplicationError("You cannot act for that organization.",
                               errors={"organization": [f"Not a {kind} organization you belong to."]})
    if len(orgs) > 1:
        raise ApplicationError("You belong to several organizations: name one.",
                               errors={"organization": ["Send the X-Organization header with its id."]})
    return orgs[0]
