"""Writes for organizations and memberships."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Membership, Organization


@transaction.atomic
def organization_create(*, kind: str, name: str, city: str, credit_code: str, legal_representative: str = "",
                        owners: list[str] | None = None, is_sme: bool = False) -> Organization:
    """Create a validated organization. Raises ``django.core.exceptions.ValidationError`` on bad fields."""
    org = Organization(kind=kind, name=name, city=city, credit_code=credit_code.strip().upper(),
                       legal_representative=legal_representative, owners=owners or [], is_sme=is_sme)
    org.full_clean()
    org.save()
    return org


@transaction.atomic
def membership_add(*, user, organization: Organization, role: str = Membership.Role.MEMBER) -> Membership:
    """Add ``user`` to ``organization`` with ``role`` (idempotent: an existing membership gets the new role)."""
    membership, _ = Membership.objects.update_or_create(user=user, organization=organization,
                                                        defaults={"role": role})
    return membership


def user_create(*, username: str, password: str, email: str = "", **extra):
    return get_user_model().objects.create_user(username=username, password=password, email=email, **extra)
