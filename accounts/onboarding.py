"""Organizations that nobody signs up: platform staff create issuer and platform organizations and invite their first
owner by e-mail; and a new confirmation e-mail for people who lost theirs (without telling who has an account)."""

from __future__ import annotations

import hashlib
import secrets
from functools import partial

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from accounts import emails, selectors, services
from accounts.models import Invitation, Membership, Organization, VerificationStatus, invitation_token_hash
from audit.services import audit_record
from marketplace.core.exceptions import ApplicationError

STAFF_KINDS = (Organization.Kind.ISSUER, Organization.Kind.PLATFORM)
RESEND_INTERVAL_S = 5 * 60  # at most one new confirmation e-mail per address in this many seconds


def staff_organization_errors(
    *, kind: str, name: str, city: str, credit_code: str, legal_representative: str, owner_email: str
) -> dict[str, list[str]]:
    errors = services._organization_errors(
        kind=Organization.Kind.STARTUP,  # the kind is checked here: only staff kinds
        name=name,
        city=city,
        credit_code=credit_code,
        legal_representative=legal_representative,
        owners=["-"],  # issuers and the platform name no owners
    )
    if kind not in STAFF_KINDS:
        errors["kind"] = [_("Platform staff create voucher issuers and platform organizations only.")]
    try:
        validate_email(owner_email)
    except ValidationError as exc:
        errors["owner_email"] = list(exc.messages)
    return errors


def organization_create_by_staff(
    *,
    actor,
    kind: str,
    name: str,
    city: str,
    credit_code: str,
    legal_representative: str,
    owner_email: str,
    base_url: str,
    ip: str | None = None,
) -> Invitation:
    """Platform staff create a voucher issuer (a city's office) or a platform organization, verified at once (staff
    checked it), and invite its first owner by e-mail (the link works ``Invitation.VALID_FOR``). 403 for anyone
    but platform staff; 400 with field errors and nothing written on bad or duplicate input. Returns the invitation
    (its organization attached)."""
    if not selectors.is_platform_staff(actor):
        raise ApplicationError(_("Only platform staff can do this."), status=403, code="permission_denied")
    name, legal_representative = " ".join(name.split()), " ".join(legal_representative.split())
    credit_code = credit_code.strip().upper()
    owner_email = get_user_model().objects.normalize_email(owner_email.strip())
    fields = dict(
        kind=kind,
        name=name,
        city=city,
        credit_code=credit_code,
        legal_representative=legal_representative,
        owner_email=owner_email,
    )
    errors = staff_organization_errors(**fields)
    if errors:
        raise ApplicationError(services.INVALID_INPUT, errors=errors)
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            org = services.organization_create(
                kind=kind,
                name=name,
                city=city,
                credit_code=credit_code,
                legal_representative=legal_representative,
                verification_status=VerificationStatus.VERIFIED,
            )
            Organization.objects.filter(pk=org.pk).update(
                verification_decided_at=timezone.now(), verification_decided_by=actor
            )
            invitation = Invitation.objects.create(
                organization=org,
                email=owner_email,
                role=Membership.Role.OWNER,
                invited_by=actor,
                token_hash=invitation_token_hash(token),
                expires_at=timezone.now() + Invitation.VALID_FOR,
            )
            audit_record(
                action="accounts.organization_created_by_staff",
                obj=org,
                actor=actor,
                organization_id=org.pk,
                ip=ip,
                data={"kind": kind, "name": name, "city": city, "credit_code": credit_code, "owner": owner_email},
            )
            transaction.on_commit(partial(emails.send_invitation, invitation, token, base_url=base_url))
    except (IntegrityError, ValidationError):
        raise ApplicationError(
            services.INVALID_INPUT, errors=staff_organization_errors(**fields) or {"name": [_("Already registered.")]}
        ) from None
    invitation.token = token
    return invitation


def confirmation_resend(*, email: str, base_url: str, ip: str | None = None) -> None:
    """Send a new confirmation link to each account of ``email`` that waits for one (inactive, never logged in).
    Says nothing about whether there was one: the caller answers the same either way. At most one e-mail per
    address every ``RESEND_INTERVAL_S`` (later requests in that time send nothing)."""
    email = get_user_model().objects.normalize_email((email or "").strip())
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ApplicationError(services.INVALID_INPUT, errors={"email": list(exc.messages)}) from None
    key = "confirm-resend:" + hashlib.sha256(email.lower().encode()).hexdigest()
    try:
        if not cache.add(key, 1, timeout=RESEND_INTERVAL_S):
            return
    except (RedisError, OSError):
        pass  # the cache down: send anyway (the endpoint's rate limit still holds)
    users = get_user_model().objects.filter(email__iexact=email, is_active=False, last_login__isnull=True)
    for user in users:
        audit_record(
            action="accounts.confirmation_resent", object_type="auth.user", object_id=str(user.pk), actor=None, ip=ip
        )
        transaction.on_commit(partial(emails.send_confirmation, user, base_url=base_url))
