"""Writes for voucher programs, applications, vouchers and redemptions.

Every change of money goes through ``ledger.services.ledger_post`` with a deterministic idempotency key and is
audited in the same transaction. Lock order, always: voucher rows (by pk), then ledger accounts (by the ledger).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from accounts.models import CITIES, Organization
from accounts.selectors import valid_model_filings
from audit.models import AuditEvent
from audit.services import audit_event, audit_record
from ledger.models import JournalTransaction, LedgerAccount
from ledger.services import Posting, account_for, accounts_for_many, ledger_post, ledger_post_many
from marketplace.core.exceptions import ApplicationError, Conflict
from marketplace.core.money import ZERO, to_amount
from marketplace.core.pipeline import advance
from marketplace.core.templatetags.money import format_money
from marketplace.core.zones import local_moment
from vouchers import rules, selectors
from vouchers.models import Level, Redemption, Voucher, VoucherApplication, VoucherProgram

# Fields an issuer may set on a program; the M2M rules are passed separately.
PROGRAM_FIELDS = (
    "name",
    "city",
    "description",
    "face_value_min",
    "face_value_max",
    "validity_days",
    "applications_open_from",
    "applications_open_until",
    "status",
    "domestic_ratio",
    "other_ratio",
    "sme_bonus_ratio",
    "model_filing_earns_domestic_ratio",
    "annual_cap_per_org",
    "per_booking_cap",
    "city_data_centers_only",
    "requires_model_filing",
    "ban_related_party",
    "max_stacked_share",
    "require_reviewed_listing",
    "level",
    "stack_levels",
    "eligible_buyer_cities",
    "subsidy_period_days",
    "sme_contract_limit",
    "sme_contract_ratio",
    "idle_threshold_percent",
    "idle_extra_ratio",
)
# Every set of programs among a booking's vouchers is tried (vouchers.rules), so their number stays small.
MAX_VOUCHERS_PER_BOOKING = rules.MAX_PROGRAMS


def _field_error(field: str, message: str, *, status: int = 400) -> ApplicationError:
    return ApplicationError(message, status=status, errors={field: [message]})


def _validate_program(program: VoucherProgram) -> None:
    """Model-level checks with field errors, so bad input answers 400 before the database CHECKs would."""
    if program.face_value_min is not None and program.face_value_max is not None:
        if program.face_value_min <= ZERO:
            raise _field_error("face_value_min", gettext("The minimum face value must be positive."))
        if program.face_value_min > program.face_value_max:
            raise _field_error("face_value_max", gettext("The maximum face value must be at least the minimum."))
    if program.applications_open_until <= program.applications_open_from:
        raise _field_error("applications_open_until", gettext("The application window must end after it opens."))
    for name in ("domestic_ratio", "other_ratio", "sme_bonus_ratio", "max_stacked_share", "sme_contract_ratio"):
        value = getattr(program, name)
        if not ZERO <= value <= 1:
            raise _field_error(name, gettext("A ratio must be between 0 and 1."))
    _validate_idle_rule(program)
    for name in ("annual_cap_per_org", "per_booking_cap", "sme_contract_limit"):
        value = getattr(program, name)
        if value is not None and value < ZERO:
            raise _field_error(name, gettext("A cap cannot be negative."))
    if program.validity_days is not None and program.validity_days < 1:
        raise _field_error("validity_days", gettext("A voucher must be valid for at least one day."))
    if program.subsidy_period_days is not None and program.subsidy_period_days < 1:
        raise _field_error(
            "subsidy_period_days", gettext("The subsidy period is at least one day (or empty for none).")
        )
    if program.level not in Level.values:
        raise _field_error("level", gettext("Choose national, provincial, city or district."))
    unknown_levels = sorted(set(program.stack_levels or ()) - set(Level.values))
    if unknown_levels:
        raise _field_error("stack_levels", gettext("Unknown level: %(names)s.") % {"names": ", ".join(unknown_levels)})
    unknown_cities = sorted(set(program.eligible_buyer_cities or ()) - set(CITIES))
    if unknown_cities:
        raise _field_error(
            "eligible_buyer_cities", gettext("Unknown city: %(names)s.") % {"names": ", ".join(unknown_cities)}
        )


def _validate_idle_rule(program: VoucherProgram) -> None:
    """The idle-capacity rule: a threshold in 0–100 % and an extra ratio in 0–1, both given or both empty."""
    threshold, extra = program.idle_threshold_percent, program.idle_extra_ratio
    if threshold is not None and not ZERO <= threshold <= 100:
        raise _field_error("idle_threshold_percent", gettext("Enter a percentage between 0 and 100."))
    if extra is not None and not ZERO <= extra <= 1:
        raise _field_error("idle_extra_ratio", gettext("A ratio must be between 0 and 1."))
    if threshold is None and extra is not None:
        raise _field_error(
            "idle_threshold_percent", gettext("Give the utilisation below which the extra share applies.")
        )
    if extra is None and threshold is not None:
        raise _field_error("idle_extra_ratio", gettext("Give the extra share for clusters below the threshold."))


def _set_program_lists(
    program: VoucherProgram, *, eligible_providers=None, eligible_accelerators=None, stack_excluded_programs=None
) -> None:
    if eligible_providers is not None:
        providers = list(eligible_providers)
        if any(org.kind != Organization.Kind.PROVIDER for org in providers):
            raise _field_error(
                "eligible_providers", gettext("Only provider organizations can be on the provider list.")
            )
        program.eligible_providers.set(providers)
    if eligible_accelerators is not None:
        program.eligible_accelerators.set(list(eligible_accelerators))
    if stack_excluded_programs is not None:
        excluded = list(stack_excluded_programs)
        if any(other.pk == program.pk for other in excluded):
            raise _field_error("stack_excluded_programs", gettext("A program cannot exclude itself."))
        program.stack_excluded_programs.set(excluded)


@transaction.atomic
def program_create(
    *,
    issuer: Organization,
    actor=None,
    budget: Decimal = ZERO,
    eligible_providers=None,
    eligible_accelerators=None,
    stack_excluded_programs=None,
    **fields,
) -> VoucherProgram:
    """Create a program for ``issuer`` (an issuer organization) and fund it with ``budget``.

    ``fields`` are ``PROGRAM_FIELDS``. Raises ``ApplicationError`` 403 if ``issuer`` is not an issuer, 400 with
    field errors on bad values or a duplicate name.
    """
    if issuer.kind != Organization.Kind.ISSUER:
        raise ApplicationError(gettext("Only voucher issuers can run programs."), status=403, code="permission_denied")
    unknown = set(fields) - set(PROGRAM_FIELDS)
    if unknown:
        raise ApplicationError(gettext("Unknown program fields: %(names)s.") % {"names": ", ".join(sorted(unknown))})
    fields.setdefault("city", issuer.city)
    program = VoucherProgram(issuer=issuer, **fields)
    _validate_program(program)
    if VoucherProgram.objects.filter(issuer=issuer, name=program.name).exists():
        raise _field_error("name", gettext("You already run a program with this name."))
    program.save()
    _set_program_lists(
        program,
        eligible_providers=eligible_providers,
        eligible_accelerators=eligible_accelerators,
        stack_excluded_programs=stack_excluded_programs,
    )
    audit_record(
        action="voucher_program.create",
        obj=program,
        actor=actor,
        organization_id=issuer.pk,
        data={"name": program.name, "status": program.status},
    )
    if budget and to_amount(budget) > ZERO:
        program_fund(program=program, amount=budget, idempotency_key=f"program:{program.pk}:fund:initial", actor=actor)
        program.refresh_from_db()
    return program


@transaction.atomic
def program_update(
    *,
    program: VoucherProgram,
    actor=None,
    eligible_providers=None,
    eligible_accelerators=None,
    stack_excluded_programs=None,
    **fields,
) -> VoucherProgram:
    """Change rules or status of ``program`` (status follows ``VoucherProgram.TRANSITIONS``).

    Rule changes apply to quotes from now on; holds already made keep their amounts. Raises ``ApplicationError``
    400 on bad values, 409 on a status change that is not allowed.
    """
    program = VoucherProgram.objects.select_for_update(of=("self",)).get(pk=program.pk)
    unknown = set(fields) - set(PROGRAM_FIELDS)
    if unknown:
        raise ApplicationError(gettext("Unknown program fields: %(names)s.") % {"names": ", ".join(sorted(unknown))})
    new_status = fields.pop("status", program.status)
    status_changed = new_status != program.status
    if status_changed:
        advance(program, new_status)
    if (
        "name" in fields
        and VoucherProgram.objects.filter(issuer_id=program.issuer_id, name=fields["name"])
        .exclude(pk=program.pk)
        .exists()
    ):
        raise _field_error("name", gettext("You already run a program with this name."))
    for name, value in fields.items():
        setattr(program, name, value)
    _validate_program(program)
    program.save()
    _set_program_lists(
        program,
        eligible_providers=eligible_providers,
        eligible_accelerators=eligible_accelerators,
        stack_excluded_programs=stack_excluded_programs,
    )
    lists = {
        "eligible_providers": eligible_providers,
        "eligible_accelerators": eligible_accelerators,
        "stack_excluded_programs": stack_excluded_programs,
    }
    changed = sorted(
        [
            *fields,
            *(["status"] if status_changed else []),
            *(name for name, value in lists.items() if value is not None),
        ]
    )
    audit_record(
        action="voucher_program.update",
        obj=program,
        actor=actor,
        organization_id=program.issuer_id,
        data={"fields": changed, "status": program.status},
    )
    return program


@transaction.atomic
def program_fund(*, program: VoucherProgram, amount: Decimal, idempotency_key: str, actor=None) -> VoucherProgram:
    """Add ``amount`` to the program's budget: program_funding → program_budget. Idempotent on the key (a replay
    changes nothing). Raises ``ApplicationError`` 400 for a non-positive amount."""
    amount = to_amount(amount)
    if amount <= ZERO:
        raise _field_error("amount", gettext("The amount must be positive."))
    posting = ledger_post(
        kind=JournalTransaction.Kind.PROGRAM_FUNDING,
        idempotency_key=idempotency_key,
        reference=f"voucher_program:{program.pk}",
        legs=[
            (account_for(LedgerAccount.Kind.PROGRAM_FUNDING, program.pk), -amount),
            (account_for(LedgerAccount.Kind.PROGRAM_BUDGET, program.pk), amount),
        ],
    )
    if not posting.replayed:
        VoucherProgram.objects.filter(pk=program.pk).update(budget_total=F("budget_total") + amount)
        audit_record(
            action="voucher_program.fund",
            obj=program,
            actor=actor,
            organization_id=program.issuer_id,
            data={"amount": str(amount), "idempotency_key": idempotency_key},
        )
    program.refresh_from_db()
    return program


# --- applications ---------------------------------------------------------------------------------------------


@transaction.atomic
def application_submit(
    *,
    program: VoucherProgram,
    applicant: Organization,
    requested_amount: Decimal,
    purpose: str,
    model_filing=None,
    actor=None,
    now: dt.datetime | None = None,
) -> VoucherApplication:
    """A startup applies to an active program while its window is open, for an amount within the face-value range.

    Raises ``ApplicationError`` 403 for a non-startup, 400 with field errors otherwise, 409 if the program is not
    active or its window is closed.
    """
    now = now or timezone.now()
    if applicant.kind != Organization.Kind.STARTUP:
        raise ApplicationError(gettext("Only startups can apply for vouchers."), status=403, code="permission_denied")
    if program.status != VoucherProgram.Status.ACTIVE:
        raise Conflict(
            gettext("This program is not accepting applications."), errors={"program": [gettext("Not active.")]}
        )
    if not program.applications_open_from <= now < program.applications_open_until:
        raise Conflict(
            gettext("The application window is closed."),
            errors={
                "program": [
                    gettext("Applications are open from %(start)s until %(end)s.")
                    % {
                        "start": local_moment(program.applications_open_from),
                        "end": local_moment(program.applications_open_until),
                    }
                ]
            },
        )
    requested_amount = to_amount(requested_amount)
    if not program.face_value_min <= requested_amount <= program.face_value_max:
        raise _field_error(
            "requested_amount",
            gettext("Must be between %(minimum)s and %(maximum)s.")
            % {"minimum": format_money(program.face_value_min), "maximum": format_money(program.face_value_max)},
        )
    if not (purpose or "").strip():
        raise _field_error("purpose", gettext("Say what the compute is for."))
    if model_filing is not None and model_filing.organization_id != applicant.pk:
        raise _field_error("model_filing", gettext("That model filing belongs to another organization."))
    if program.requires_model_filing:
        _check_required_filing(model_filing, on=timezone.localdate(now))
    application = VoucherApplication.objects.create(
        program=program,
        applicant=applicant,
        submitted_by=actor if getattr(actor, "pk", None) else None,
        requested_amount=requested_amount,
        purpose=purpose.strip(),
        model_filing=model_filing,
    )
    audit_record(
        action="voucher_application.submit",
        obj=application,
        actor=actor,
        organization_id=applicant.pk,
        data={"program": program.pk, "requested_amount": str(requested_amount)},
    )
    return application


def _check_required_filing(model_filing, *, on: dt.date) -> None:
    """A program that requires a model filing takes applications naming a verified filing valid ``on`` only
    (the filing the rules engine will count). Raises ``ApplicationError`` 400 on ``model_filing`` otherwise."""
    if model_filing is None:
        raise _field_error(
            "model_filing",
            gettext("This program requires a registered model filing verified by an issuer or platform staff."),
        )
    if not valid_model_filings(on=on).filter(pk=model_filing.pk).exists():
        message = (
            gettext("This program requires a verified model filing: %(filing)s has not been verified yet.")
            if model_filing.status == model_filing.Status.PENDING
            else gettext("This program requires a verified model filing that is still valid: %(filing)s is not.")
        )
        raise _field_error("model_filing", message % {"filing": model_filing})


def _lock_submitted(application: VoucherApplication) -> VoucherApplication:
    """The application's row, locked. Raises ``Conflict`` 409 when it was already decided."""
    locked = VoucherApplication.objects.select_for_update(of=("self",)).select_related("program").get(pk=application.pk)
    if not locked.available_statuses():
        status = locked.get_status_display().lower()
        raise Conflict(
            gettext("This application was already %(status)s.") % {"status": status},
            errors={"status": [gettext("Already %(status)s.") % {"status": status}]},
        )
    return locked


@transaction.atomic
def application_approve(
    *, application: VoucherApplication, face_value: Decimal, actor=None, now: dt.datetime | None = None
) -> Voucher:
    """Approve and issue a ``Voucher`` of ``face_value`` (≤ requested, within the program's range), moving it
    program_budget → voucher in the ledger.

    Raises ``ApplicationError`` 400 on a bad face value, 409 when the application was already decided or the
    program's budget is short (``InsufficientFunds``; nothing is written then). Callers check the actor is a
    member of the program's issuer (``selectors.applications_for_issuer``).
    """
    now = now or timezone.now()
    application = _lock_submitted(application)
    program = application.program
    face_value = to_amount(face_value)
    if face_value > application.requested_amount:
        raise _field_error(
            "face_value",
            gettext("Cannot exceed the requested %(amount)s.") % {"amount": format_money(application.requested_amount)},
        )
    if not program.face_value_min <= face_value <= program.face_value_max:
        raise _field_error(
            "face_value",
            gettext("Must be between %(minimum)s and %(maximum)s.")
            % {"minimum": format_money(program.face_value_min), "maximum": format_money(program.face_value_max)},
        )
    voucher = Voucher.objects.create(
        program=program,
        holder_id=application.applicant_id,
        application=application,
        face_value=face_value,
        issued_at=now,
        expires_at=now + dt.timedelta(days=program.validity_days),
    )
    ledger_post(
        kind=JournalTransaction.Kind.VOUCHER_ISSUE,
        idempotency_key=f"voucher:{voucher.pk}:issue",
        reference=f"voucher:{voucher.pk}",
        legs=[
            (account_for(LedgerAccount.Kind.PROGRAM_BUDGET, program.pk), -face_value),
            (account_for(LedgerAccount.Kind.VOUCHER, voucher.pk), face_value),
        ],
    )
    advance(
        application,
        VoucherApplication.Status.APPROVED,
        approved_face_value=face_value,
        decided_by=actor if getattr(actor, "pk", None) else None,
        decided_at=now,
        updated_at=now,
    )
    audit_record(
        action="voucher_application.approve",
        obj=application,
        actor=actor,
        organization_id=program.issuer_id,
        data={"voucher": voucher.pk, "face_value": str(face_value), "applicant": application.applicant_id},
    )
    return voucher


@transaction.atomic
def application_reject(*, application: VoucherApplication, reason: str, actor=None) -> VoucherApplication:
    """Reject with a ``reason`` (required, 400 without). 409 when the application was already decided."""
    if not (reason or "").strip():
        raise _field_error("reason", gettext("Give the applicant a reason."))
    application = _lock_submitted(application)
    advance(
        application,
        VoucherApplication.Status.REJECTED,
        reject_reason=reason.strip(),
        decided_by=actor if getattr(actor, "pk", None) else None,
        decided_at=timezone.now(),
    )
    audit_record(
        action="voucher_application.reject",
        obj=application,
        actor=actor,
        organization_id=application.program.issuer_id,
        data={"reason": application.reject_reason},
    )
    return application


# --- vouchers: expiry and revocation --------------------------------------------------------------------------


def _budget_return(voucher: Voucher, *, key: str, kind: str, amount: Decimal) -> Posting:
    """The posting that moves ``amount`` of the voucher's balance back to its program budget."""
    legs = [
        (account_for(LedgerAccount.Kind.VOUCHER, voucher.pk), -amount),
        (account_for(LedgerAccount.Kind.PROGRAM_BUDGET, voucher.program_id), amount),
    ]
    return Posting(kind=kind, idempotency_key=key, reference=f"voucher:{voucher.pk}", legs=legs)


def _return_to_budget(voucher: Voucher, *, key: str, kind: str, amount: Decimal | None = None) -> Decimal:
    """Move ``amount`` (default: the voucher's whole unheld balance) back to its program budget; returns it.
    Call holding the voucher's row lock (lock step 5): this is its ledger step (6); audit after it, never before."""
    if amount is None:
        account = account_for(LedgerAccount.Kind.VOUCHER, voucher.pk)
        account.refresh_from_db(fields=["balance"])
        amount = account.balance
    if amount > ZERO:
        posting = _budget_return(voucher, key=key, kind=kind, amount=amount)
        ledger_post(
            kind=posting.kind, idempotency_key=posting.idempotency_key, reference=posting.reference, legs=posting.legs
        )
    return amount


def _end_voucher(voucher: Voucher, *, status: str, actor, now) -> tuple[Voucher, Decimal]:
    """End an active voucher: its row lock, its balance back to the budget, its status, its audit event."""
    voucher = Voucher.objects.select_for_update(of=("self",)).get(pk=voucher.pk)
    if voucher.status != Voucher.Status.ACTIVE:
        return voucher, ZERO
    action = "expire" if status == Voucher.Status.EXPIRED else "revoke"
    returned = _return_to_budget(
        voucher,
        key=f"voucher:{voucher.pk}:{action}",
        kind=JournalTransaction.Kind.VOUCHER_EXPIRE if action == "expire" else JournalTransaction.Kind.VOUCHER_REVOKE,
    )
    Voucher.objects.filter(pk=voucher.pk, status=Voucher.Status.ACTIVE).update(status=status, updated_at=now)
    voucher.status = status
    audit_record(
        action=f"voucher.{action}",
        obj=voucher,
        actor=actor,
        organization_id=voucher.holder_id,
        data={"returned_to_budget": str(returned)},
    )
    return voucher, returned


def voucher_expire(*, voucher: Voucher, now: dt.datetime | None = None, actor=None) -> Voucher:
    """Expire a voucher past ``expires_at``: its unheld balance returns to the program budget; held parts stay
    held (released later, they go back to the budget too). Idempotent: a voucher already expired or revoked is
    returned unchanged. Raises ``Conflict`` (409) before ``expires_at``. Its audit event goes in last."""
    now = now or timezone.now()
    if voucher.status == Voucher.Status.ACTIVE and voucher.expires_at > now:
        raise Conflict(
            gettext("This voucher has not expired yet."),
            errors={"expires_at": [gettext("Expires %(when)s.") % {"when": local_moment(voucher.expires_at)}]},
        )
    with transaction.atomic():
        return _end_voucher(voucher, status=Voucher.Status.EXPIRED, actor=actor, now=now)[0]


def voucher_revoke(*, voucher: Voucher, actor=None, reason: str = "") -> Voucher:
    """Revoke an active voucher (issuer): no new holds; its unheld balance returns to the program budget; parts
    already held can still be captured or released. Idempotent on an already ended voucher. Its audit events go
    in last."""
    with transaction.atomic():
        voucher, _ = _end_voucher(voucher, status=Voucher.Status.REVOKED, actor=actor, now=timezone.now())
        if reason:
            audit_record(
                action="voucher.revoke_reason",
                obj=voucher,
                actor=actor,
                organization_id=voucher.holder_id,
                data={"reason": reason},
            )
    return voucher


# --- redemption: quote, hold, release, capture -----------------------------------------------------------------


def _unique_ids(voucher_ids: Iterable) -> list[int]:
    try:
        ids = [int(v) for v in voucher_ids]
    except (TypeError, ValueError):
        raise _field_error("vouchers", gettext("Voucher ids must be integers.")) from None
    if len(set(ids)) != len(ids):
        raise _field_error("vouchers", gettext("Each voucher may be named once."))
    if len(ids) > MAX_VOUCHERS_PER_BOOKING:
        raise _field_error(
            "vouchers",
            gettext("Name at most %(count)s vouchers for one booking.") % {"count": MAX_VOUCHERS_PER_BOOKING},
        )
    return ids


def _buyer_vouchers(buyer: Organization, ids: list[int]) -> list[Voucher]:
    """The buyer's vouchers with ``ids``. Another organization's (or a missing) voucher is refused with 400 naming the
    ``organization`` rule, worded so it does not tell whether such a voucher exists."""
    vouchers = list(Voucher.objects.filter(pk__in=ids, holder=buyer).select_related("program"))
    missing = sorted(set(ids) - {v.pk for v in vouchers})
    if missing:
        raise ApplicationError(
            gettext("A voucher cannot pay for this booking."),
            code="voucher_ineligible",
            errors={
                "vouchers": [
                    gettext("Voucher %(id)s: not one of your vouchers (rule: organization).") % {"id": pk}
                    for pk in missing
                ]
            },
        )
    return vouchers


def _parts(
    *,
    buyer: Organization,
    listing,
    subtotal: Decimal,
    vouchers: list[Voucher],
    now: dt.datetime,
    cluster_utilisation: Decimal | None = None,
) -> list[rules.VoucherPart]:
    if not vouchers:
        return []
    context = selectors.booking_context(
        buyer=buyer, listing=listing, subtotal=to_amount(subtotal), now=now, cluster_utilisation=cluster_utilisation
    )
    candidates = selectors.voucher_candidates(vouchers, buyer_id=buyer.pk, now=now)
    try:
        return rules.compute_parts(context, candidates)
    except rules.RulesError as exc:
        raise ApplicationError(
            gettext("A voucher cannot pay for this booking."),
            errors={"vouchers": [_violation_message(violation) for violation in exc.violations]},
            code="voucher_ineligible",
        ) from exc


# The rules engine's refusals (``vouchers.rules.RULE_MESSAGES``) in the user's language, without rule codes.
VIOLATION_MESSAGES = {
    "organization": gettext_lazy("Voucher %(id)s belongs to another organization."),
    "revoked": gettext_lazy("Voucher %(id)s has been revoked."),
    "expired": gettext_lazy("Voucher %(id)s has expired."),
    "unreviewed_listing": gettext_lazy(
        "Voucher %(id)s cannot pay for a listing whose hardware has not passed the platform review."
    ),
    "provider_not_eligible": gettext_lazy(
        "Voucher %(id)s is not valid with this provider (not on the program's provider list)."
    ),
    "data_center_city": gettext_lazy("Voucher %(id)s only pays for data centres in the program's city."),
    "accelerator_not_eligible": gettext_lazy("Voucher %(id)s does not cover this accelerator."),
    "model_filing_required": gettext_lazy("Voucher %(id)s requires a registered model filing."),
    "related_party": gettext_lazy(
        "Voucher %(id)s cannot pay a provider related to the buyer (shared owner or legal representative)."
    ),
    "buyer_city": gettext_lazy("Voucher %(id)s is only for organizations registered in the program's cities."),
    "subsidy_period_over": gettext_lazy(
        "Voucher %(id)s has reached the end of the program's subsidy period for your organization."
    ),
}


def _violation_message(violation: rules.Violation) -> str:
    text = VIOLATION_MESSAGES.get(violation.rule)
    return str(text) % {"id": violation.voucher_id} if text is not None else violation.message


def voucher_quote(
    *,
    buyer: Organization,
    listing,
    subtotal: Decimal,
    voucher_ids: Iterable,
    now: dt.datetime | None = None,
    cluster_utilisation: Decimal | None = None,
) -> list[rules.VoucherPart]:
    """Each voucher's part of ``subtotal`` for ``listing`` (soonest expiry first) and the rule that bound it.
    ``cluster_utilisation``: the listing's cluster's 7-day utilisation, for the programs' idle-capacity rule
    (``orders.pricing.recent_utilisation``; None = unknown, the rule does not apply).

    Reads only. Raises ``ApplicationError`` 400 (errors["vouchers"]) for a voucher that is not the buyer's, 400
    (errors["vouchers"], one message per voucher naming the rule) when one is ineligible.
    """
    ids = _unique_ids(voucher_ids)
    return _parts(
        buyer=buyer,
        listing=listing,
        subtotal=subtotal,
        vouchers=_buyer_vouchers(buyer, ids),
        now=now or timezone.now(),
        cluster_utilisation=cluster_utilisation,
    )


def _lock_buyer_vouchers(buyer: Organization, ids: list[int]) -> list[Voucher]:
    """Lock every voucher the buyer holds in the programs of ``ids``, in one statement ordered by pk, and return
    the fresh rows of ``ids``. Holds of one (program, buyer) pair then run one at a time, so the annual cap (a sum
    over all that pair's redemptions) cannot be overrun by a race; one ordered statement cannot deadlock."""
    program_ids = {v.program_id for v in _buyer_vouchers(buyer, ids)}
    locked = list(
        Voucher.objects.select_for_update(of=("self",))
        .select_related("program")
        .filter(holder=buyer, program_id__in=program_ids)
        .order_by("pk")
    )
    return [v for v in locked if v.pk in set(ids)]


def vouchers_hold_for_booking(
    *,
    booking,
    voucher_ids: Iterable,
    actor=None,
    now: dt.datetime | None = None,
    cluster_utilisation: Decimal | None = None,
) -> list[Redemption]:
    """Hold each voucher's part of ``booking.subtotal``: voucher → voucher_hold, one ``Redemption`` (held) each.

    Call inside the transaction that creates the booking (it requires one). Locks the buyer's vouchers in the
    programs involved (by pk), re-reads balances and annual use under that lock and recomputes the parts, so the
    parts never overdraw a voucher or a cap. Zero parts hold nothing. Idempotent per booking: a booking that has
    redemptions gets them back. Ledger keys ``booking:{id}:voucher:{vid}:hold``. Raises like ``voucher_quote``;
    ``cluster_utilisation`` as there.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("vouchers_hold_for_booking must run inside the booking's transaction")
    now = now or timezone.now()
    ids = _unique_ids(voucher_ids)
    if not ids:
        return []
    buyer = booking.buyer
    vouchers = _lock_buyer_vouchers(buyer, ids)
    # Checked under the voucher locks, so two calls for one booking cannot both hold.
    existing = list(Redemption.objects.filter(booking_id=booking.pk).order_by("pk"))
    if existing:
        return existing
    parts = _parts(
        buyer=buyer,
        listing=booking.listing,
        subtotal=booking.subtotal,
        vouchers=vouchers,
        now=now,
        cluster_utilisation=cluster_utilisation,
    )
    redemptions = []
    for part in parts:
        if part.amount <= ZERO:
            continue
        ledger_post(
            kind=JournalTransaction.Kind.VOUCHER_HOLD,
            idempotency_key=f"booking:{booking.pk}:voucher:{part.voucher_id}:hold",
            reference=f"booking:{booking.pk}",
            legs=[
                (account_for(LedgerAccount.Kind.VOUCHER, part.voucher_id), -part.amount),
                (account_for(LedgerAccount.Kind.VOUCHER_HOLD, part.voucher_id), part.amount),
            ],
        )
        redemption = Redemption.objects.create(
            voucher_id=part.voucher_id, booking_id=booking.pk, amount=part.amount, bound_by=part.bound_by
        )
        audit_record(
            action="voucher.hold",
            obj=redemption,
            actor=actor,
            organization_id=buyer.pk,
            data={
                "booking": booking.pk,
                "voucher": part.voucher_id,
                "amount": str(part.amount),
                "bound_by": part.bound_by,
            },
        )
        redemptions.append(redemption)
    return redemptions


def _settle_held(booking, *, to_status: str, actor, destination: LedgerAccount | None = None) -> list[Redemption]:
    """Move each held redemption of ``booking`` out of voucher_hold (back to the voucher, or to ``destination``).
    The conditional update makes it exactly once per redemption, whatever the retries.

    In the lock order (``marketplace.core.locks``): the vouchers' rows (by id), then every ledger posting in one
    statement (``ledger_post_many``: accounts in id order) — the moves out of voucher_hold and, on release, what
    comes back to an ended voucher returning to its program budget — then the audit events (plain INSERTs that take
    no lock)."""
    action = "release" if to_status == Redemption.Status.RELEASED else "capture"
    kind = JournalTransaction.Kind.VOUCHER_RELEASE if action == "release" else JournalTransaction.Kind.VOUCHER_CAPTURE
    # Voucher rows first (the lock order of holds and expiry), so a voucher cannot end between our reading its
    # status and the money coming back to it.
    voucher_ids = Redemption.objects.filter(booking_id=booking.pk, status=Redemption.Status.HELD).values("voucher_id")
    list(
        Voucher.objects.select_for_update(of=("self",))
        .filter(pk__in=voucher_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    held = list(
        Redemption.objects.select_for_update(of=("self",))
        .filter(booking_id=booking.pk, status=Redemption.Status.HELD)
        .select_related("voucher")
        .order_by("pk")
    )
    if not held:
        return held
    postings, returns = [], []
    for redemption in held:
        voucher = redemption.voucher
        target = destination or account_for(LedgerAccount.Kind.VOUCHER, voucher.pk)
        postings.append(
            Posting(
                kind=kind,
                idempotency_key=f"booking:{booking.pk}:voucher:{voucher.pk}:{action}",
                reference=f"booking:{booking.pk}",
                legs=[
                    (account_for(LedgerAccount.Kind.VOUCHER_HOLD, voucher.pk), -redemption.amount),
                    (target, redemption.amount),
                ],
            )
        )
        if action == "release" and voucher.status != Voucher.Status.ACTIVE:
            # An ended voucher cannot spend what comes back: it returns to the program budget, as on expiry. (After
            # the release in the same statement: entries go in by account, then by posting order.)
            returns.append(
                _budget_return(
                    voucher,
                    key=f"booking:{booking.pk}:voucher:{voucher.pk}:return",
                    kind=JournalTransaction.Kind.VOUCHER_EXPIRE,
                    amount=redemption.amount,
                )
            )
    ledger_post_many([*postings, *returns])
    Redemption.objects.filter(pk__in=[r.pk for r in held], status=Redemption.Status.HELD).update(
        status=to_status, updated_at=timezone.now()
    )
    for redemption in held:
        redemption.status = to_status
        voucher = redemption.voucher
        data = {"booking": booking.pk, "voucher": voucher.pk, "amount": str(redemption.amount)}
        if destination is not None:
            data["destination"] = f"{destination.kind}:{destination.owner_id}"
        audit_record(
            action=f"voucher.{action}",
            obj=redemption,
            actor=actor,
            organization_id=voucher.holder_id,
            data=data,
        )
    return held


def redemptions_release(*, booking, actor=None) -> list[Redemption]:
    """Release the booking's held voucher parts (cancel / hold expiry): voucher_hold → voucher. Idempotent:
    returns the redemptions released by this call (none the second time). Audit events last."""
    with transaction.atomic():
        return _settle_held(booking, to_status=Redemption.Status.RELEASED, actor=actor)


@dataclass
class CaptureBatch:
    """What ``redemptions_capture_many`` did and what its caller still has to write in the same transaction."""

    redemptions: list[Redemption] = field(default_factory=list)  # captured by this call, voucher loaded
    postings: list[Posting] = field(default_factory=list)  # voucher_hold → destination, one per redemption
    events: list[AuditEvent] = field(default_factory=list)  # ``voucher.capture``, one per redemption
    # Service credits (issue 20): per booking, the legs voucher_hold(-c) → voucher or program budget(+c) of what
    # was credited back instead of captured, and the credited amounts per program.
    credit_legs: dict[int, list[tuple[LedgerAccount, Decimal]]] = field(default_factory=dict)
    credited: dict[int, dict[int, Decimal]] = field(default_factory=dict)


def redemptions_capture_many(
    *, destinations: dict[int, LedgerAccount], credits: dict[int, Decimal] | None = None, actor=None
) -> CaptureBatch:
    """Capture the held voucher parts of many bookings at settlement, ``{booking id: destination account}``: the
    capture for ``settlement.services.bookings_settle``.

    ``credits`` (``{booking id: voucher share of its service credit}``, issue 20) credits part of a booking's held
    voucher parts back BEFORE the capture instead of capturing them: the share is split over the booking's held
    redemptions pro rata (by pk, the last one takes the rounding remainder), each redemption captures only its
    amount less its credit (its ``amount`` becomes what was captured, or it is ``released`` when nothing is left),
    and the credited part goes voucher_hold(-c) → voucher(+c), or → the program budget when the voucher has
    expired or was revoked (it could not be spent any more). Those legs are returned in ``credit_legs`` (and the
    credited amounts per program in ``credited``) for the caller's one ``service_credit`` posting per booking.

    Locks the vouchers concerned (one statement, by pk: the lock order of holds and expiry), then the held
    redemptions, and marks them captured with one conditional update (exactly once per redemption: a second call
    finds none held). It does NOT post or audit: it returns, per redemption, the ledger posting (key
    ``booking:{id}:voucher:{vid}:capture``, voucher_hold(-V) → destination(+V)) and the ``voucher.capture`` audit
    event, which the caller MUST write in this same transaction
    (``ledger.services.ledger_post_many`` and ``audit.services.audit_record_many``), so that a batch of settlements
    posts all its entries in one account-ordered statement and records its audit events with one INSERT.
    Raises ``RuntimeError`` outside a transaction.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("redemptions_capture_many must run inside the settlement's transaction")
    batch = CaptureBatch()
    if not destinations:
        return batch
    held = Redemption.objects.filter(booking_id__in=list(destinations), status=Redemption.Status.HELD)
    list(
        Voucher.objects.select_for_update(of=("self",))
        .filter(pk__in=held.values("voucher_id"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    batch.redemptions = list(held.select_for_update(of=("self",)).select_related("voucher").order_by("pk"))
    if not batch.redemptions:
        return batch
    now = timezone.now()
    captured = Redemption.objects.filter(
        pk__in=[r.pk for r in batch.redemptions], status=Redemption.Status.HELD
    ).update(status=Redemption.Status.CAPTURED, updated_at=now)
    if captured != len(batch.redemptions):  # cannot happen while we hold the row locks
        raise Conflict(
            gettext("Voucher redemptions changed while being captured; try again."), code="concurrent_update"
        )
    credited = _split_credits(batch.redemptions, credits or {})
    keys = [(LedgerAccount.Kind.VOUCHER_HOLD, r.voucher_id) for r in batch.redemptions]
    for redemption in batch.redemptions:
        if credited.get(redemption.pk):
            keys.append(_credit_target(redemption.voucher))
    accounts = accounts_for_many(keys)
    for redemption in batch.redemptions:
        redemption.status, redemption.updated_at = Redemption.Status.CAPTURED, now
        booking_id, voucher = redemption.booking_id, redemption.voucher
        destination = destinations[booking_id]
        hold = accounts[(LedgerAccount.Kind.VOUCHER_HOLD, voucher.pk)]
        credit = credited.get(redemption.pk, ZERO)
        held_amount, take = redemption.amount, redemption.amount - credit
        if credit:
            target = accounts[_credit_target(voucher)]
            batch.credit_legs.setdefault(booking_id, []).extend([(hold, -credit), (target, credit)])
            program_credits = batch.credited.setdefault(booking_id, {})
            program_credits[voucher.program_id] = program_credits.get(voucher.program_id, ZERO) + credit
            if take > ZERO:
                Redemption.objects.filter(pk=redemption.pk).update(amount=take)
                redemption.amount = take
            else:
                Redemption.objects.filter(pk=redemption.pk).update(status=Redemption.Status.RELEASED)
                redemption.status = Redemption.Status.RELEASED
        if take > ZERO:
            batch.postings.append(
                Posting(
                    kind=JournalTransaction.Kind.VOUCHER_CAPTURE,
                    idempotency_key=f"booking:{booking_id}:voucher:{voucher.pk}:capture",
                    reference=f"booking:{booking_id}",
                    legs=[(hold, -take), (destination, take)],
                )
            )
        data = {
            "booking": booking_id,
            "voucher": voucher.pk,
            "amount": str(take),
            "destination": f"{destination.kind}:{destination.owner_id}",
        }
        if credit:
            data.update(held=str(held_amount), credited=str(credit))
        batch.events.append(
            audit_event(
                action="voucher.capture", obj=redemption, actor=actor, organization_id=voucher.holder_id, data=data
            )
        )
    return batch


def _credit_target(voucher: Voucher) -> tuple[str, int]:
    """Where a credited voucher part goes: back to the voucher while it is active, else to its program budget."""
    if voucher.status == Voucher.Status.ACTIVE:
        return (LedgerAccount.Kind.VOUCHER, voucher.pk)
    return (LedgerAccount.Kind.PROGRAM_BUDGET, voucher.program_id)


def _split_credits(redemptions: list[Redemption], credits: dict[int, Decimal]) -> dict[int, Decimal]:
    """``{redemption pk: credited part}``: each booking's credit split over its redemptions pro rata to their
    amounts (in pk order; the last takes the rounding remainder), never more than a redemption holds."""
    out: dict[int, Decimal] = {}
    by_booking: dict[int, list[Redemption]] = {}
    for redemption in redemptions:
        by_booking.setdefault(redemption.booking_id, []).append(redemption)
    for booking_id, share in credits.items():
        rows = by_booking.get(booking_id, [])
        total = sum((r.amount for r in rows), ZERO)
        share = min(to_amount(share), total)
        if share <= ZERO:
            continue
        left = share
        for i, redemption in enumerate(rows):
            part = left if i == len(rows) - 1 else min(to_amount(share * redemption.amount / total), left)
            part = min(part, redemption.amount)
            out[redemption.pk] = part
            left -= part
    return out
