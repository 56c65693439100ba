"""Reads for settlement: a booking's money movements and timeline, payouts for providers, claims and statements for
issuers.

Every queryset is scoped to the user's organizations, so another organization's objects answer 404 (platform staff
read every payout, and platform staff and auditors every statement).
"""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet
from django.utils.translation import gettext

from accounts.models import Organization
from accounts.selectors import has_org_kind, is_auditor, is_platform_staff, user_organizations
from ledger.models import Entry, JournalTransaction, LedgerAccount
from marketplace.core.exceptions import NotFound
from orders.models import Booking, BookingStatusChange
from orders.selectors import bookings_visible_to
from settlement.models import BookingSettlement, Payout, ReimbursementClaim, ReimbursementStatement
from vouchers.models import Voucher, VoucherProgram


def booking_for_progress(user, booking_id) -> Booking:
    """A booking the user's organization bought or provides, with its status history and settlement; ``NotFound``
    otherwise (whether it does not exist or is someone else's)."""
    try:
        pk = int(booking_id)
    except (TypeError, ValueError):
        raise NotFound(gettext("No such booking.")) from None
    booking = (
        bookings_visible_to(user)
        .filter(pk=pk)
        .select_related("listing__cluster__data_center")
        .prefetch_related(
            Prefetch("status_changes", queryset=BookingStatusChange.objects.select_related("actor").order_by("id"))
        )
        .first()
    )
    if booking is None:
        raise NotFound(gettext("No such booking."))
    booking.settlement_record = BookingSettlement.objects.filter(booking=booking).first()
    return booking


def booking_movements(booking_id: int) -> QuerySet[JournalTransaction]:
    """The ledger transactions of a booking (reference ``booking:{id}``), oldest first, with their entries."""
    return (
        JournalTransaction.objects.filter(reference=f"booking:{booking_id}")
        .order_by("id")
        .prefetch_related(Prefetch("entries", queryset=Entry.objects.select_related("account").order_by("id")))
    )


def name_accounts(movements, *, viewer) -> None:
    """Give every entry of ``movements`` (transactions with their entries and accounts) an ``account_label``: the
    account by its human name in the active language ("Wallet", "Voucher #12 — Shanghai 2026 …", "Payment held",
    "Payable to Acme Compute"), never its kind code or owner id. Owners are read in one query per kind."""
    entries = [entry for tx in movements for entry in tx.entries.all()]
    owners: dict[str, set[int]] = {}
    for entry in entries:
        owners.setdefault(entry.account.kind, set()).add(entry.account.owner_id)
    kind = LedgerAccount.Kind
    org_ids = (
        owners.get(kind.WALLET, set()) | owners.get(kind.WALLET_HOLD, set()) | owners.get(kind.PROVIDER_PAYABLE, set())
    )
    orgs = dict(Organization.objects.filter(pk__in=org_ids - {None}).values_list("pk", "name"))
    voucher_ids = owners.get(kind.VOUCHER, set()) | owners.get(kind.VOUCHER_HOLD, set())
    vouchers = dict(Voucher.objects.filter(pk__in=voucher_ids - {None}).values_list("pk", "program__name"))
    program_ids = owners.get(kind.PROGRAM_BUDGET, set()) | owners.get(kind.REIMBURSEMENT_DUE, set())
    programs = dict(VoucherProgram.objects.filter(pk__in=program_ids - {None}).values_list("pk", "name"))
    mine = set(user_organizations(viewer).values_list("pk", flat=True))
    for entry in entries:
        account, owner = entry.account, entry.account.owner_id
        org = orgs.get(owner, "")
        voucher = {"id": owner, "program": vouchers.get(owner, "")}
        program = {"program": programs.get(owner, "")}
        if account.kind == kind.WALLET:
            label = gettext("Wallet") if owner in mine else gettext("Wallet of %(org)s") % {"org": org}
        elif account.kind == kind.WALLET_HOLD:
            label = gettext("Payment held") if owner in mine else gettext("Payment held by %(org)s") % {"org": org}
        elif account.kind == kind.VOUCHER:
            label = gettext("Voucher #%(id)s — %(program)s") % voucher
        elif account.kind == kind.VOUCHER_HOLD:
            label = gettext("Voucher #%(id)s — %(program)s, held") % voucher
        elif account.kind == kind.PROVIDER_PAYABLE:
            label = gettext("Payable to %(org)s") % {"org": org}
        elif account.kind == kind.PROGRAM_BUDGET:
            label = gettext("Budget of %(program)s") % program
        elif account.kind == kind.REIMBURSEMENT_DUE:
            label = gettext("Reimbursement due from %(program)s") % program
        else:
            label = str(account.get_kind_display())
        entry.account_label = label


def can_read_payouts(user) -> bool:
    """Provider members (their organizations' payouts) and platform staff (every payout: they make the transfers)."""
    return bool(user and user.is_authenticated) and (
        has_org_kind(user, Organization.Kind.PROVIDER) or is_platform_staff(user)
    )


def payouts_visible_to(user, *, status: str | None = None) -> QuerySet[Payout]:
    """Payouts of the provider organizations the user acts for (every provider's for platform staff), newest first;
    optionally only those of one status."""
    qs = Payout.objects.select_related("provider")
    if not is_platform_staff(user):
        qs = qs.filter(provider__in=user_organizations(user, kind=Organization.Kind.PROVIDER))
    return qs.filter(status=status) if status else qs


def unpaid_settlements(user) -> QuerySet[BookingSettlement]:
    """Settlements not yet in a payout (what the next batch will cover): of the user's providers, or of every
    provider for platform staff."""
    qs = BookingSettlement.objects.filter(payout__isnull=True)
    if not is_platform_staff(user):
        qs = qs.filter(provider__in=user_organizations(user, kind=Organization.Kind.PROVIDER))
    return qs


def claims_visible_to(user, *, status: str | None = None) -> QuerySet[ReimbursementClaim]:
    """Reimbursement claims against programs of the issuer organizations the user acts for, newest first."""
    issuers = user_organizations(user, kind=Organization.Kind.ISSUER)
    qs = ReimbursementClaim.objects.filter(program__issuer__in=issuers).select_related("program", "booking")
    return qs.filter(status=status) if status else qs


def can_read_statements(user) -> bool:
    """Issuer members (their programs' statements), platform staff and auditors (every statement)."""
    return bool(user and user.is_authenticated) and (
        has_org_kind(user, Organization.Kind.ISSUER) or is_platform_staff(user) or is_auditor(user)
    )


def statements_visible_to(
    user, *, program_id: int | None = None, status: str | None = None
) -> QuerySet[ReimbursementStatement]:
    """Statements of the programs of the issuers the user acts for (every program's for platform staff and
    auditors), latest period first, with ``claim_count``; optionally one program's or one status's."""
    qs = ReimbursementStatement.objects.select_related("program", "program__issuer", "paid_by")
    if not (is_platform_staff(user) or is_auditor(user)):
        qs = qs.filter(program__issuer__in=user_organizations(user, kind=Organization.Kind.ISSUER))
    if program_id is not None:
        qs = qs.filter(program_id=program_id)
    if status:
        qs = qs.filter(status=status)
    return qs.annotate(claim_count=Count("claims")).order_by("-period_end", "-id")  # annotate drops Meta.ordering


def statement_for(user, statement_id) -> ReimbursementStatement:
    """A statement the user may read (``statements_visible_to``); ``NotFound`` otherwise, whether it does not exist
    or is another city's."""
    try:
        pk = int(statement_id)
    except (TypeError, ValueError):
        raise NotFound(gettext("No such statement.")) from None
    statement = statements_visible_to(user).filter(pk=pk).first()
    if statement is None:
        raise NotFound(gettext("No such statement."))
    return statement


def statement_lines(statement: ReimbursementStatement) -> QuerySet[ReimbursementClaim]:
    """The claims a statement lists, oldest first, with booking, startup (buyer) and provider."""
    return (
        ReimbursementClaim.objects.filter(statement=statement)
        .order_by("created_at", "id")
        .select_related("booking__buyer", "booking__listing__cluster__data_center__provider")
    )


def can_pay_statement(user, statement: ReimbursementStatement) -> bool:
    """Members acting for the program's issuer, and platform staff (auditors only read)."""
    return user_organizations(user, kind=Organization.Kind.ISSUER).filter(
        pk=statement.program.issuer_id
    ).exists() or is_platform_staff(user)
