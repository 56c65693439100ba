"""Reads for vouchers: what a user may see (other organizations' objects are simply absent → 404), the booking
context and candidates fed to the pure rules engine, voucher balances and the program burn-down series."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Organization
from accounts.selectors import has_valid_model_filing, user_organizations
from ledger.models import LedgerAccount
from listings.agent_selectors import cluster_hardware_mismatched
from listings.models import Listing
from listings.selectors import listing_reviewed
from marketplace.core.money import ZERO, to_amount
from vouchers import rules
from vouchers.models import Redemption, Voucher, VoucherApplication, VoucherProgram

HUNDRED = Decimal(100)
SPENDING_STATUSES = (Redemption.Status.HELD, Redemption.Status.CAPTURED)


def _org_ids(user) -> list[int]:
    return list(user_organizations(user).values_list("pk", flat=True))


def programs_visible(user) -> QuerySet[VoucherProgram]:
    """Active programs for everyone logged in, plus every program (drafts too) the user's issuers run."""
    return (
        VoucherProgram.objects.filter(Q(status=VoucherProgram.Status.ACTIVE) | Q(issuer_id__in=_org_ids(user)))
        .select_related("issuer")
        .distinct()
    )


def programs_managed(user) -> QuerySet[VoucherProgram]:
    """Programs run by an issuer the user acts for: the only ones they may change or decide on."""
    return VoucherProgram.objects.filter(issuer__in=user_organizations(user, kind=Organization.Kind.ISSUER))


def applications_visible(user) -> QuerySet[VoucherApplication]:
    """The user's organizations' own applications and the queue of the programs their issuers run."""
    org_ids = _org_ids(user)
    return VoucherApplication.objects.filter(
        Q(applicant_id__in=org_ids) | Q(program__issuer_id__in=org_ids)
    ).select_related("program", "applicant", "model_filing", "voucher")


def applications_for_issuer(user) -> QuerySet[VoucherApplication]:
    return VoucherApplication.objects.filter(program__in=programs_managed(user)).select_related("program")


def vouchers_issued_by(user) -> QuerySet[Voucher]:
    """Vouchers issued by the programs the user's issuer organizations run (what they may revoke)."""
    return Voucher.objects.filter(program__in=programs_managed(user)).select_related("program")


def vouchers_visible(user) -> QuerySet[Voucher]:
    """Vouchers the user's organizations hold, and those issued by programs their issuers run."""
    org_ids = _org_ids(user)
    return Voucher.objects.filter(Q(holder_id__in=org_ids) | Q(program__issuer_id__in=org_ids)).select_related(
        "program", "holder"
    )


def vouchers_spendable(user) -> QuerySet[Voucher]:
    """Active, unexpired vouchers of the startups ``user`` acts for, soonest expiry first (the spending order)."""
    orgs = user_organizations(user, kind=Organization.Kind.STARTUP)
    return (
        Voucher.objects.filter(holder__in=orgs, status=Voucher.Status.ACTIVE, expires_at__gt=timezone.now())
        .select_related("program")
        .order_by("expires_at", "pk")
    )


def voucher_balances(voucher_ids) -> dict[int, dict[str, Decimal]]:
    """``{voucher id: {"balance", "held", "spent"}}``: balance and held from the ledger, spent = captured parts."""
    ids = list(voucher_ids)
    out = {pk: {"balance": ZERO, "held": ZERO, "spent": ZERO} for pk in ids}
    for kind, owner_id, balance in LedgerAccount.objects.filter(
        kind__in=[LedgerAccount.Kind.VOUCHER, LedgerAccount.Kind.VOUCHER_HOLD], owner_id__in=ids
    ).values_list("kind", "owner_id", "balance"):
        out[owner_id]["balance" if kind == LedgerAccount.Kind.VOUCHER else "held"] = balance
    for voucher_id, spent in (
        Redemption.objects.filter(voucher_id__in=ids, status=Redemption.Status.CAPTURED)
        .values("voucher_id")
        .annotate(total=Sum("amount"))
        .values_list("voucher_id", "total")
    ):
        out[voucher_id]["spent"] = spent
    return out


def program_budget_available(program: VoucherProgram) -> Decimal:
    account = LedgerAccount.objects.filter(kind=LedgerAccount.Kind.PROGRAM_BUDGET, owner_id=program.pk).first()
    return account.balance if account else ZERO


def program_budgets_available(program_ids) -> dict[int, Decimal]:
    """``program_budget_available`` for many programs in one query: {program id: balance}."""
    return dict(
        LedgerAccount.objects.filter(
            kind=LedgerAccount.Kind.PROGRAM_BUDGET, owner_id__in=list(program_ids)
        ).values_list("owner_id", "balance")
    )


def annual_used(*, program_ids, holder_id: int, now: dt.datetime) -> dict[int, Decimal]:
    """What ``holder_id`` used (held or captured) per program in ``now``'s calendar year (UTC)."""
    rows = (
        Redemption.objects.filter(
            voucher__program_id__in=program_ids,
            voucher__holder_id=holder_id,
            status__in=SPENDING_STATUSES,
            created_at__year=now.year,
        )
        .values("voucher__program_id")
        .annotate(total=Sum("amount"))
        .values_list("voucher__program_id", "total")
    )
    return dict(rows)


def _related_ids(program: VoucherProgram, name: str) -> frozenset[int]:
    """The ids of a program's many-to-many ``name``: from ``prefetch_related`` when the caller prefetched it (one
    query for many programs), else one query."""
    if name in getattr(program, "_prefetched_objects_cache", {}):
        return frozenset(obj.pk for obj in getattr(program, name).all())
    return frozenset(getattr(program, name).values_list("pk", flat=True))


def program_rules(program: VoucherProgram) -> rules.ProgramRules:
    return rules.ProgramRules(
        program_id=program.pk,
        city=program.city,
        domestic_ratio=program.domestic_ratio,
        other_ratio=program.other_ratio,
        sme_bonus_ratio=program.sme_bonus_ratio,
        model_filing_earns_domestic_ratio=program.model_filing_earns_domestic_ratio,
        annual_cap_per_org=program.annual_cap_per_org,
        per_booking_cap=program.per_booking_cap,
        eligible_provider_ids=_related_ids(program, "eligible_providers"),
        city_data_centers_only=program.city_data_centers_only,
        eligible_accelerator_ids=_related_ids(program, "eligible_accelerators"),
        requires_model_filing=program.requires_model_filing,
        ban_related_party=program.ban_related_party,
        max_stacked_share=program.max_stacked_share,
        require_reviewed_listing=program.require_reviewed_listing,
        level=program.level,
        stack_levels=frozenset(program.stack_levels),
        stack_excluded_program_ids=_related_ids(program, "stack_excluded_programs"),
        eligible_buyer_cities=frozenset(program.eligible_buyer_cities),
        subsidy_period_days=program.subsidy_period_days,
        sme_contract_limit=program.sme_contract_limit,
        sme_contract_ratio=program.sme_contract_ratio,
        idle_threshold_percent=program.idle_threshold_percent,
        idle_extra_ratio=program.idle_extra_ratio,
    )


def first_subsidised(*, program_ids, holder_id: int) -> dict[int, dt.datetime]:
    """When ``holder_id``'s first subsidised booking in each program was made: its first redemption that was not
    released (held or captured), per program."""
    return dict(
        Redemption.objects.filter(
            voucher__program_id__in=program_ids, voucher__holder_id=holder_id, status__in=SPENDING_STATUSES
        )
        .values("voucher__program_id")
        .annotate(first=Min("created_at"))
        .values_list("voucher__program_id", "first")
    )


def voucher_candidates(vouchers: list[Voucher], *, buyer_id: int, now: dt.datetime) -> list[rules.VoucherCandidate]:
    """The rules engine's view of ``vouchers``: balances from the ledger, this year's use per program and the start
    of each program's subsidy period for the buyer."""
    balances = voucher_balances(v.pk for v in vouchers)
    programs = {v.program_id: v.program for v in vouchers}
    program_rules_by_id = {pk: program_rules(program) for pk, program in programs.items()}
    used = annual_used(program_ids=list(programs), holder_id=buyer_id, now=now)
    periods = [pk for pk, program in programs.items() if program.subsidy_period_days is not None]
    first = first_subsidised(program_ids=periods, holder_id=buyer_id) if periods else {}
    return [
        rules.VoucherCandidate(
            voucher_id=v.pk,
            holder_id=v.holder_id,
            expires_at=v.expires_at,
            balance=balances[v.pk]["balance"],
            rules=program_rules_by_id[v.program_id],
            status=v.status,
            annual_used=used.get(v.program_id, ZERO),
            first_subsidised_at=first.get(v.program_id),
        )
        for v in vouchers
    ]


def booking_context(
    *,
    buyer: Organization,
    listing: Listing,
    subtotal: Decimal,
    now: dt.datetime,
    cluster_utilisation: Decimal | None = None,
) -> rules.BookingContext:
    """The rules engine's facts about a booking of ``listing`` by ``buyer``. ``cluster_utilisation`` (the cluster's
    reserved share of its listed node-hours over the last 7 days) is read by ``orders``, which sees reservations."""
    listing = Listing.objects.select_related("cluster__accelerator", "cluster__data_center__provider").get(
        pk=listing.pk
    )
    cluster = listing.cluster
    provider = cluster.data_center.provider
    return rules.BookingContext(
        subtotal=subtotal,
        buyer_id=buyer.pk,
        provider_id=provider.pk,
        data_center_city=cluster.data_center.city,
        accelerator_id=cluster.accelerator_id,
        accelerator_domestic=cluster.accelerator.domestic,
        accelerator_export_controlled=cluster.accelerator.export_controlled,
        listing_reviewed=listing_reviewed(listing) and not cluster_hardware_mismatched(cluster),
        buyer_is_sme=buyer.is_sme,
        buyer_has_model_filing=has_valid_model_filing(buyer.pk, on=timezone.localdate(now)),
        related_party=bool(buyer.related_party_names() & provider.related_party_names()),
        now=now,
        buyer_city=buyer.city,
        cluster_utilisation=cluster_utilisation,
    )


def program_burndown(program: VoucherProgram) -> dict:
    """Daily series for the burn-down chart: budget funded, cumulative face value issued, cumulative spent
    (captured parts) and what is left in the budget. Labels are ISO dates."""
    issued = dict(
        Voucher.objects.filter(program=program)
        .annotate(day=TruncDate("issued_at"))
        .values("day")
        .annotate(total=Sum("face_value"))
        .values_list("day", "total")
    )
    spent = dict(
        Redemption.objects.filter(voucher__program=program, status=Redemption.Status.CAPTURED)
        .annotate(day=TruncDate("updated_at"))
        .values("day")
        .annotate(total=Sum("amount"))
        .values_list("day", "total")
    )
    # TruncDate counts days in the current time zone: the creation day must too (not its UTC date)
    days = sorted({*issued, *spent, timezone.localdate(program.created_at)})
    labels, issued_series, spent_series = [], [], []
    issued_total = spent_total = ZERO
    for day in days:
        issued_total += issued.get(day, ZERO)
        spent_total += spent.get(day, ZERO)
        labels.append(day.isoformat())
        issued_series.append(str(issued_total))
        spent_series.append(str(spent_total))
    return {
        "labels": labels,
        "issued": issued_series,
        "spent": spent_series,
        "budget": str(program.budget_total),
        "available": str(program_budget_available(program)),
    }


@dataclass(frozen=True)
class SampleBooking:
    """A booking an issuer imagines on the program form, to preview what the program would pay for it."""

    nodes: int
    gpus_per_node: int
    hours: int
    price_per_gpu_hour: Decimal
    domestic: bool
    accelerator_id: int | None = None  # None: any chip of that origin
    export_controlled: bool = False
    voucher_balance: Decimal | None = None  # None: as much as the booking could use
    buyer_is_sme: bool = False
    buyer_has_model_filing: bool = False
    # The cluster's utilisation over the last 7 days, 0–100 (the idle-capacity rule); None: unknown, the rule
    # does not apply (as for a cluster that listed nothing then).
    cluster_utilisation_percent: Decimal | None = None

    @property
    def gpu_hours(self) -> int:
        return self.nodes * self.gpus_per_node * self.hours

    @property
    def subtotal(self) -> Decimal:
        return to_amount(self.price_per_gpu_hour * self.gpu_hours)


@dataclass(frozen=True)
class SamplePreview:
    subtotal: Decimal
    voucher_amount: Decimal
    cash_amount: Decimal
    ratio: Decimal | None = None
    bound_by: str = ""
    refused_by: str = ""  # the eligibility rule the sample breaks (then the voucher pays nothing)
    # The program's idle-capacity rule for the sample: "" (the program has none), "applied" (``idle_extra`` is in
    # ``ratio``), "busy" (the cluster was used at or above the threshold) or "unknown" (no utilisation typed).
    idle: str = ""
    idle_extra: Decimal | None = None


SAMPLE_VOUCHER_ID = 1


def sample_engine_inputs(
    program_rules: rules.ProgramRules, sample: SampleBooking, *, now: dt.datetime
) -> tuple[rules.BookingContext, rules.VoucherCandidate]:
    """The rules engine's inputs for ``sample`` under ``program_rules``: one voucher of the program, held by the
    buyer, unused this year; the provider, data centre and buyer meet the program's other eligibility rules (the
    first eligible provider and buyer city, a reviewed listing in the program's city, no related party); the
    accelerator is checked when one is named (any other id stands for "a chip of that origin")."""
    accelerator_id = sample.accelerator_id
    if accelerator_id is None:
        accelerator_id = min(program_rules.eligible_accelerator_ids, default=0)
    subtotal = sample.subtotal
    context = rules.BookingContext(
        subtotal=subtotal,
        buyer_id=1,
        provider_id=min(program_rules.eligible_provider_ids, default=0),
        data_center_city=program_rules.city,
        accelerator_id=accelerator_id,
        accelerator_domestic=sample.domestic,
        accelerator_export_controlled=sample.export_controlled,
        listing_reviewed=True,
        buyer_is_sme=sample.buyer_is_sme,
        buyer_has_model_filing=sample.buyer_has_model_filing,
        related_party=False,
        now=now,
        buyer_city=min(program_rules.eligible_buyer_cities, default=program_rules.city),
        cluster_utilisation=None
        if sample.cluster_utilisation_percent is None
        else sample.cluster_utilisation_percent / HUNDRED,
    )
    candidate = rules.VoucherCandidate(
        voucher_id=SAMPLE_VOUCHER_ID,
        holder_id=1,
        expires_at=now + dt.timedelta(days=365),
        balance=subtotal if sample.voucher_balance is None else sample.voucher_balance,
        rules=program_rules,
    )
    return context, candidate


def sample_preview(
    program_rules: rules.ProgramRules, sample: SampleBooking, *, now: dt.datetime | None = None
) -> SamplePreview:
    """What ``program_rules`` would pay of ``sample`` (``vouchers.rules.compute_parts``; reads and writes nothing)."""
    context, candidate = sample_engine_inputs(program_rules, sample, now=now or timezone.now())
    try:
        (part,) = rules.compute_parts(context, [candidate])
    except rules.RulesError as exc:
        return SamplePreview(context.subtotal, ZERO, context.subtotal, refused_by=exc.violations[0].rule)
    return SamplePreview(
        context.subtotal,
        part.amount,
        context.subtotal - part.amount,
        part.ratio,
        part.bound_by,
        idle=_sample_idle(context, program_rules),
        idle_extra=program_rules.idle_extra_ratio if rules.idle_cluster(context, program_rules) else None,
    )


def _sample_idle(context: rules.BookingContext, program_rules: rules.ProgramRules) -> str:
    """How the program's idle-capacity rule treats the sample (``SamplePreview.idle``)."""
    if program_rules.idle_threshold_percent is None or program_rules.idle_extra_ratio is None:
        return ""
    if context.cluster_utilisation is None:
        return "unknown"
    return "applied" if rules.idle_cluster(context, program_rules) else "busy"
