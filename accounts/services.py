"""Writes for organizations, memberships, sign-up, e-mail confirmation, verification by staff and invitations.

Every change is one transaction with its audit event; e-mails go out after the commit (``accounts.emails``).
Membership changes of one organization lock its row first, so they run one after another (the last owner check).
"""

from __future__ import annotations

import secrets
from functools import partial

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from accounts import emails, selectors
from accounts.models import CITIES, Invitation, Membership, Organization, VerificationStatus, invitation_token_hash
from accounts.validators import validate_credit_code
from audit.services import audit_record
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound

SIGNUP_KINDS = (Organization.Kind.STARTUP, Organization.Kind.PROVIDER)
INVALID_INPUT = gettext_lazy("Please correct the fields marked.")


@transaction.atomic
def organization_create(
    *,
    kind: str,
    name: str,
    city: str,
    credit_code: str,
    legal_representative: str = "",
    owners: list[str] | None = None,
    is_sme: bool = False,
    verification_status: str = VerificationStatus.PENDING,
) -> Organization:
    """Create a validated organization (pending verification unless told otherwise). Raises
    ``django.core.exceptions.ValidationError`` on bad fields."""
    org = Organization(
        kind=kind,
        name=name,
        city=city,
        credit_code=credit_code.strip().upper(),
        legal_representative=legal_representative,
        owners=owners or [],
        is_sme=is_sme,
        verification_status=verification_status,
    )
    org.full_clean()
    org.save()
    return org


@transaction.atomic
def membership_add(*, user, organization: Organization, role: str = Membership.Role.MEMBER) -> Membership:
    """Add ``user`` to ``organization`` with ``role`` (idempotent: an existing membership gets the new role)."""
    membership, _ = Membership.objects.update_or_create(user=user, organization=organization, defaults={"role": role})
    return membership


def user_create(*, username: str, password: str, email: str = "", **extra):
    return get_user_model().objects.create_user(username=username, password=password, email=email, **extra)


# --- sign-up -------------------------------------------------------------------------------------------------------


def _add(errors: dict, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _user_errors(*, username: str, email: str, password: str) -> dict[str, list[str]]:
    """Field errors for a new user: username (format, taken), e-mail (format, taken), password (Django's
    validators, given the username and e-mail so that a password like the username is refused)."""
    user_model = get_user_model()
    errors: dict[str, list[str]] = {}
    try:
        UnicodeUsernameValidator()(username)
        if not username or len(username) > 150:
            raise ValidationError(gettext("A username has 1 to 150 characters."))
    except ValidationError as exc:
        errors["username"] = list(exc.messages)
    else:
        if user_model.objects.filter(username__iexact=username).exists():
            _add(errors, "username", gettext("This username is taken."))
    try:
        validate_email(email)
    except ValidationError as exc:
        errors["email"] = list(exc.messages)
    else:
        if user_model.objects.filter(email__iexact=email).exists():
            _add(
                errors,
                "email",
                gettext("An account with this e-mail address already exists: log in or reset the password."),
            )
    try:
        password_validation.validate_password(password, user=user_model(username=username, email=email))
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    return errors


def _organization_errors(
    *, kind: str, name: str, city: str, credit_code: str, legal_representative: str, owners: list[str]
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if kind not in SIGNUP_KINDS:
        _add(errors, "kind", gettext("Sign up a startup or a compute provider; issuers are set up by the platform."))
    if not name:
        _add(errors, "name", gettext("Give the organization's registered name."))
    elif Organization.objects.filter(name__iexact=name).exists():
        _add(errors, "name", gettext("An organization with this name is already registered."))
    if city not in CITIES:
        _add(errors, "city", gettext("Choose the city where the organization is registered."))
    try:
        validate_credit_code(credit_code)
    except ValidationError as exc:
        errors["credit_code"] = list(exc.messages)
    else:
        if Organization.objects.filter(credit_code=credit_code).exists():
            _add(
                errors,
                "credit_code",
                gettext("An organization with this unified social credit code is already registered."),
            )
    if not legal_representative:
        _add(errors, "legal_representative", gettext("Give the legal representative's name."))
    if not owners:
        _add(errors, "owners", gettext("Name at least one owner."))
    elif any(len(owner) > 100 for owner in owners):
        _add(errors, "owners", gettext("An owner's name has at most 100 characters."))
    return errors


def _signup_values(
    *,
    kind: str = "",
    name: str = "",
    city: str = "",
    credit_code: str = "",
    legal_representative: str = "",
    owners: list[str] | None = None,
    username: str = "",
    email: str = "",
    password: str = "",
    **_,
) -> dict:
    return {
        "kind": kind,
        "name": " ".join(name.split()),
        "city": city,
        "credit_code": credit_code.strip().upper(),
        "legal_representative": " ".join(legal_representative.split()),
        "owners": [" ".join(owner.split()) for owner in owners or [] if owner and owner.strip()],
        "username": username.strip(),
        "email": get_user_model().objects.normalize_email(email.strip()),
        "password": password,
    }


def signup_errors(**fields) -> dict[str, list[str]]:
    """What ``signup`` would refuse in these fields (missing ones count as empty), by field. A read: the page
    shows these next to its own type errors, so one submission reports every problem."""
    values = _signup_values(**fields)
    return {
        **_organization_errors(
            **{k: values[k] for k in ("kind", "name", "city", "credit_code", "legal_representative", "owners")}
        ),
        **_user_errors(username=values["username"], email=values["email"], password=values["password"]),
    }


def signup(
    *,
    kind: str,
    name: str,
    city: str,
    credit_code: str,
    legal_representative: str,
    owners: list[str],
    is_sme: bool,
    username: str,
    email: str,
    password: str,
    base_url: str,
    ip: str | None = None,
) -> Membership:
    """A person signs up a startup or provider: an inactive user (active once the e-mailed link is followed), the
    organization (pending verification by staff) and the user's owner membership, in one transaction with its
    audit event. Raises ``ApplicationError`` 400 with field errors (nothing written) on bad or duplicate input."""
    fields = _signup_values(
        kind=kind,
        name=name,
        city=city,
        credit_code=credit_code,
        legal_representative=legal_representative,
        owners=owners,
        username=username,
        email=email,
        password=password,
    )
    kind, name, city, credit_code = fields["kind"], fields["name"], fields["city"], fields["credit_code"]
    legal_representative, owners = fields["legal_representative"], fields["owners"]
    username, email = fields["username"], fields["email"]
    errors = signup_errors(**fields)
    if errors:
        raise ApplicationError(INVALID_INPUT, errors=errors)
    try:
        with transaction.atomic():
            user = user_create(username=username, password=password, email=email, is_active=False)
            org = organization_create(
                kind=kind,
                name=name,
                city=city,
                credit_code=credit_code,
                legal_representative=legal_representative,
                owners=owners,
                is_sme=is_sme,
            )
            membership = Membership.objects.create(user=user, organization=org, role=Membership.Role.OWNER)
            audit_record(
                action="accounts.signed_up",
                obj=org,
                actor=user,
                organization_id=org.pk,
                ip=ip,
                data={
                    "kind": kind,
                    "name": name,
                    "city": city,
                    "credit_code": credit_code,
                    "username": username,
                    "is_sme": bool(is_sme),
                },
            )
            transaction.on_commit(partial(emails.send_confirmation, user, base_url=base_url))
    except (IntegrityError, ValidationError):
        # Someone registered the same name, code, username or e-mail between the checks and the insert.
        errors = signup_errors(**fields)
        raise ApplicationError(
            INVALID_INPUT, errors=errors or {"non_field_errors": [gettext("Already registered.")]}
        ) from None
    return membership


def user_confirm_email(*, token: str, ip: str | None = None):
    """Activate the user of an e-mailed confirmation link. A link works once, within ``CONFIRMATION_MAX_AGE``;
    otherwise ``ApplicationError`` 400 with the reason under ``token``."""
    try:
        user_id, state = emails.confirmation_user_id(token)
    except emails.ConfirmationError as exc:
        raise ApplicationError(exc.message, errors={"token": [exc.message]}) from None
    used = gettext("This confirmation link was already used or is no longer valid. Log in, or reset your password.")
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().filter(pk=user_id).first()
        if user is None or user.is_active or not emails.confirmation_matches(user, state):
            raise ApplicationError(used, errors={"token": [used]})
        user.is_active = True
        user.save(update_fields=["is_active"])
        membership = Membership.objects.filter(user=user).order_by("pk").first()
        audit_record(
            action="accounts.email_confirmed",
            obj=user,
            actor=user,
            ip=ip,
            organization_id=membership.organization_id if membership else None,
            data={"email": user.email},
        )
    return user


# --- verification by platform staff --------------------------------------------------------------------------------

# Staff decide once, on a pending organization.
ALLOWED_DECISIONS = {VerificationStatus.PENDING: {VerificationStatus.VERIFIED, VerificationStatus.REJECTED}}


def _decide(*, organization_id: int, actor, to: str, reason: str, ip: str | None, base_url: str) -> Organization:
    if not selectors.is_platform_staff(actor):
        raise ApplicationError(
            gettext("Only platform staff verify organizations."), status=403, code="permission_denied"
        )
    reason = (reason or "").strip()
    if to == VerificationStatus.REJECTED and not reason:
        raise ApplicationError(INVALID_INPUT, errors={"reason": [gettext("Give the reason for the rejection.")]})
    with transaction.atomic():
        org = Organization.objects.select_for_update(of=("self",)).filter(pk=organization_id).first()
        if org is None:
            raise NotFound(gettext("No such organization."))
        if to not in ALLOWED_DECISIONS.get(org.verification_status, ()):
            raise Conflict(
                gettext("%(name)s is already %(status)s.")
                % {"name": org.name, "status": org.get_verification_status_display().lower()},
                code="already_decided",
            )
        previous = org.verification_status
        org.verification_status, org.verification_reason = to, reason
        org.verification_decided_at, org.verification_decided_by = timezone.now(), actor
        org.save(
            update_fields=[
                "verification_status",
                "verification_reason",
                "verification_decided_at",
                "verification_decided_by",
                "updated_at",
            ]
        )
        audit_record(
            action=f"accounts.organization_{to}",
            obj=org,
            actor=actor,
            organization_id=org.pk,
            ip=ip,
            data={"from": previous, "to": to, **({"reason": reason} if reason else {})},
        )
        owners = [user.email for user in selectors.organization_owners(org) if user.email]
        transaction.on_commit(partial(emails.send_verification_decision, org, owners, base_url=base_url))
    return org


def organization_verify(
    *, organization_id: int, actor, base_url: str, ip: str | None = None, note: str = ""
) -> Organization:
    """Platform staff verify a pending organization: from now on it may book, bid, list and apply."""
    return _decide(
        organization_id=organization_id,
        actor=actor,
        to=VerificationStatus.VERIFIED,
        reason=note,
        ip=ip,
        base_url=base_url,
    )


def organization_reject(
    *, organization_id: int, actor, reason: str, base_url: str, ip: str | None = None
) -> Organization:
    """Platform staff reject a pending organization, with the reason its owners are told."""
    return _decide(
        organization_id=organization_id,
        actor=actor,
        to=VerificationStatus.REJECTED,
        reason=reason,
        ip=ip,
        base_url=base_url,
    )


# --- teams ---------------------------------------------------------------------------------------------------------


def invitable_roles(org: Organization) -> list[str]:
    """Owners and members for every organization; auditors only for issuers (they read its programs' spend)."""
    roles = [Membership.Role.OWNER, Membership.Role.MEMBER]
    if org.kind == Organization.Kind.ISSUER:
        roles.append(Membership.Role.AUDITOR)
    return roles


def _lock_organization_of(actor, organization_id) -> tuple[Organization, Membership]:
    """Lock the organization's row (membership changes of one organization run one at a time) and return it with
    ``actor``'s membership. An organization the actor does not belong to answers 404, as if it did not exist."""
    org = Organization.objects.select_for_update(of=("self",)).filter(pk=organization_id).first()
    membership = selectors.membership_of(actor, organization_id) if org else None
    if membership is None:
        raise NotFound(gettext("No such organization."))
    return org, membership


def _require_owner(membership: Membership, what: str) -> None:
    if membership.role != Membership.Role.OWNER:
        raise ApplicationError(
            gettext("Only owners of %(name)s can do this: %(what)s.")
            % {"name": membership.organization.name, "what": what},
            status=403,
            code="permission_denied",
        )


def invitation_create(
    *, organization_id: int, email: str, role: str, actor, base_url: str, ip: str | None = None
) -> Invitation:
    """An owner invites ``email`` to join with ``role``; the link (valid ``Invitation.VALID_FOR``) is e-mailed.
    A new invitation to the same address replaces the pending one. The returned invitation carries the raw
    ``token`` (only its hash is stored)."""
    email = get_user_model().objects.normalize_email((email or "").strip())
    with transaction.atomic():
        org, membership = _lock_organization_of(actor, organization_id)
        _require_owner(membership, gettext("invite people"))
        errors: dict[str, list[str]] = {}
        try:
            validate_email(email)
        except ValidationError as exc:
            errors["email"] = list(exc.messages)
        else:
            if Membership.objects.filter(organization=org, user__email__iexact=email).exists():
                _add(
                    errors,
                    "email",
                    gettext("Someone with this e-mail address is already a member of %(name)s.") % {"name": org.name},
                )
        if role not in invitable_roles(org):
            _add(errors, "role", gettext("Choose one of: %(names)s.") % {"names": ", ".join(invitable_roles(org))})
        if errors:
            raise ApplicationError(INVALID_INPUT, errors=errors)
        Invitation.objects.filter(organization=org, email__iexact=email, status=Invitation.Status.PENDING).update(
            status=Invitation.Status.REVOKED, updated_at=timezone.now()
        )
        token = secrets.token_urlsafe(32)
        invitation = Invitation.objects.create(
            organization=org,
            email=email,
            role=role,
            invited_by=actor,
            token_hash=invitation_token_hash(token),
            expires_at=timezone.now() + Invitation.VALID_FOR,
        )
        audit_record(
            action="accounts.invitation_created",
            obj=invitation,
            actor=actor,
            organization_id=org.pk,
            ip=ip,
            data={"email": email, "role": role, "expires_at": invitation.expires_at.isoformat()},
        )
        transaction.on_commit(partial(emails.send_invitation, invitation, token, base_url=base_url))
    invitation.token = token
    return invitation


def invitation_accept(
    *, token: str, user=None, username: str = "", password: str = "", ip: str | None = None
) -> Membership:
    """Accept an invitation: a signed-in ``user`` whose e-mail it was sent to joins the organization; without a
    user, a new account (``username``, ``password``) is created for the invited e-mail, active at once (the link
    proves the address). Expired, used or withdrawn invitations answer 400 under ``token``."""
    found = (
        Invitation.objects.filter(token_hash=invitation_token_hash(token or ""))
        .values_list("pk", "organization_id")
        .first()
    )
    if found is None:
        raise NotFound(gettext("No such invitation."))
    with transaction.atomic():
        # The organization first, as every membership change (and ``invitation_create``) locks it: then the row.
        Organization.objects.select_for_update(of=("self",)).filter(pk=found[1]).first()
        invitation = Invitation.objects.select_for_update(of=("self",)).select_related("organization").get(pk=found[0])
        problem = {
            Invitation.Status.ACCEPTED: gettext("This invitation was already accepted."),
            Invitation.Status.REVOKED: gettext("This invitation was withdrawn or replaced by a newer one."),
        }.get(invitation.status)
        if problem is None and invitation.expires_at <= timezone.now():
            problem = gettext("This invitation has expired: ask an owner of the organization for a new one.")
        if problem:
            raise ApplicationError(problem, errors={"token": [problem]})
        org = invitation.organization
        if user is None or not user.is_authenticated:
            errors = _user_errors(username=(username or "").strip(), email=invitation.email, password=password)
            if "email" in errors:
                errors = {
                    "email": [gettext("An account with this e-mail address exists: log in, then open the link again.")]
                }
            if errors:
                raise ApplicationError(INVALID_INPUT, errors=errors)
            user = user_create(username=username.strip(), password=password, email=invitation.email)
        elif user.email.strip().lower() != invitation.email.lower():
            raise ApplicationError(
                gettext("This invitation was sent to another e-mail address than your account's."),
                status=403,
                code="permission_denied",
            )
        if Membership.objects.filter(user=user, organization=org).exists():
            raise Conflict(gettext("You are already a member of %(name)s.") % {"name": org.name})
        membership = Membership.objects.create(user=user, organization=org, role=invitation.role)
        invitation.status, invitation.accepted_by, invitation.accepted_at = (
            Invitation.Status.ACCEPTED,
            user,
            timezone.now(),
        )
        invitation.save(update_fields=["status", "accepted_by", "accepted_at", "updated_at"])
        audit_record(
            action="accounts.invitation_accepted",
            obj=invitation,
            actor=user,
            organization_id=org.pk,
            ip=ip,
            data={"email": invitation.email, "role": invitation.role, "user": user.get_username()},
        )
    return membership


def membership_remove(*, organization_id: int, user_id: int, actor, ip: str | None = None) -> None:
    """An owner removes a member, or anyone leaves. The last owner can neither leave nor be removed (409)."""
    with transaction.atomic():
        org, membership = _lock_organization_of(actor, organization_id)
        leaving = str(user_id) == str(actor.pk)
        if not leaving:
            _require_owner(membership, gettext("remove members"))
        target = Membership.objects.select_related("user").filter(organization=org, user_id=user_id).first()
        if target is None:
            raise NotFound(gettext("No such member."))
        if (
            target.role == Membership.Role.OWNER
            and not Membership.objects.filter(organization=org, role=Membership.Role.OWNER)
            .exclude(pk=target.pk)
            .exists()
        ):
            raise Conflict(
                (
                    gettext("%(name)s needs an owner: invite another owner before you leave.")
                    if leaving
                    else gettext("%(name)s needs an owner: invite another owner before removing this one.")
                )
                % {"name": org.name},
                code="last_owner",
            )
        target.delete()
        audit_record(
            action="accounts.member_left" if leaving else "accounts.member_removed",
            obj=org,
            actor=actor,
            organization_id=org.pk,
            ip=ip,
            data={"user": target.user.get_username(), "user_id": target.user_id, "role": target.role},
        )
