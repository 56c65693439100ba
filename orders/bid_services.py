"""Writes for bids: place (hold the maximum cash cost), cancel, expire, match (→ a confirmed booking) and the batch
clearing that re-plans all open bids with ``orders.matching.clear``.

Money: placing a bid moves its ``held_amount`` wallet → wallet hold (key ``bid:<id>:hold``); cancel, expiry and a
match each give it back in full (key ``bid:<id>:release`` — only one of them can ever commit, the bid row lock and
the ``open`` status check see to that). A match books through ``orders.services.booking_create(confirm=True)`` in the
same transaction, so the booking's own cash part is held on the same ledger path; the excess is simply not re-held.

Voucher part: a bid holds the FULL maximum cash cost, without deducting what its vouchers might pay. This is the
conservative estimate the design allows (a voucher's part depends on the listing finally chosen, its programme's
rules and the balance left at match time); the booking made at the match applies the vouchers and holds only the
cash remainder.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from audit.services import audit_record
from ledger import services as ledger_services
from listings.models import Accelerator, Cluster, Listing, Node
from marketplace.core import hours
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.money import to_amount, to_price
from orders import limits, matching
from orders.models import Bid, NodeReservation
from orders.services import booking_create, check_hour
from vouchers.models import Voucher

B = Bid.Status
HOUR = dt.timedelta(hours=1)
# Bids and matching look at most this far ahead (the per-node free-hour masks grow with it).
MAX_HORIZON = dt.timedelta(days=90)
# A batch clearing loads at most this many open bids (oldest first); the next run takes the rest.
CLEAR_BATCH = 5000


def _int(name: str, value, errors: dict, *, minimum: int = 1, maximum: int = 100_000) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        errors.setdefault(name, []).append(f"Give a whole number from {minimum} to {maximum}.")
        return None
    return value


def _accelerators(slugs, errors: dict) -> list[Accelerator]:
    slugs = [slugs] if isinstance(slugs, str) else list(slugs or [])
    slugs = [s.slug if isinstance(s, Accelerator) else str(s) for s in slugs]
    if not slugs:
        errors["accelerators"] = ["Name at least one accelerator (slug)."]
        return []
    found = list(Accelerator.objects.filter(slug__in=slugs))
    unknown = sorted(set(slugs) - {a.slug for a in found})
    if unknown:
        errors["accelerators"] = [f"Unknown accelerator: {', '.join(unknown)}."]
    return found


def bid_place(*, buyer, accelerators, nodes, duration_hours, earliest_start, latest_end, max_price_per_gpu_hour,
              expires_at=None, vouchers=(), created_by=None, ip: str | None = None) -> Bid:
    """Place a bid of ``buyer`` (a startup) and hold its maximum cash cost; then, once committed, try to match it.

    ``accelerators``: slugs (or Accelerator objects); ``earliest_start``/``latest_end``: aware, whole UTC hours,
    future, at least ``duration_hours`` apart, within 90 days; ``expires_at`` (default: the last possible start)
    must be in the future. ``held_amount = max price × G × nodes × duration_hours``, where G is the largest
    ``gpus_per_node`` among clusters of the accepted accelerators that have an active listing now (stored as
    ``max_gpus_per_node``; matching never picks a larger cluster, so a fill never costs more than the hold).

    Raises ``ApplicationError`` 400 with field errors (nothing written), ``InsufficientFunds`` 409 when the wallet
    cannot cover the hold (nothing written).
    """
    errors: dict[str, list[str]] = {}
    accs = _accelerators(accelerators, errors)
    nodes = _int("nodes", nodes, errors)
    duration_hours = _int("duration_hours", duration_hours, errors, maximum=24 * 90)
    start = check_hour("earliest_start", earliest_start, errors)
    end = check_hour("latest_end", latest_end, errors)
    now = timezone.now()
    if start is not None and start <= now:
        errors.setdefault("earliest_start", []).append("The earliest start must be in the future.")
    if start is not None and end is not None and duration_hours is not None:
        if end - start < duration_hours * HOUR:
            errors.setdefault("latest_end", []).append(
                f"The window must be at least {duration_hours} hours long (the duration).")
        if end - now > MAX_HORIZON:
            errors.setdefault("latest_end", []).append("Bids look at most 90 days ahead.")
    try:
        price = to_price(max_price_per_gpu_hour)
        if not price > 0:
            raise InvalidOperation
    except (InvalidOperation, TypeError, ValueError):
        price = None
        errors["max_price_per_gpu_hour"] = ["Give a price above 0 per GPU-hour."]
    if expires_at is None and end is not None and duration_hours is not None:
        expires_at = end - duration_hours * HOUR
    if expires_at is not None:
        if not isinstance(expires_at, dt.datetime) or timezone.is_naive(expires_at):
            errors["expires_at"] = ["Give a timezone-aware time (UTC)."]
        elif expires_at <= now:
            errors["expires_at"] = ["The expiry must be in the future."]
    try:
        voucher_ids = [int(v) for v in vouchers or ()]
    except (TypeError, ValueError):
        voucher_ids, errors["vouchers"] = [], ["Give voucher ids."]
    if voucher_ids and Voucher.objects.filter(pk__in=voucher_ids, holder=buyer).count() != len(set(voucher_ids)):
        errors["vouchers"] = ["Use vouchers your organization holds."]
    max_gpus = None
    if accs and "accelerators" not in errors:
        max_gpus = Cluster.objects.filter(accelerator__in=accs, listings__status=Listing.Status.ACTIVE).aggregate(
            m=Max("gpus_per_node"))["m"]
        if max_gpus is None:
            errors["accelerators"] = ["No open listing offers these accelerators yet."]
    if errors:
        raise ApplicationError("Invalid bid.", errors=errors)

    held = bid_hold_amount(price=price, max_gpus_per_node=max_gpus, nodes=nodes, duration_hours=duration_hours)
    with transaction.atomic():
        bid = Bid.objects.create(buyer=buyer, created_by=created_by, nodes=nodes, duration_hours=duration_hours,
                                 earliest_start=start, latest_end=end, max_price_per_gpu_hour=price,
                                 max_gpus_per_node=max_gpus, vouchers=voucher_ids, expires_at=expires_at,
                                 held_amount=held)
        bid.accelerators.set(accs)
        limits.open_order_count(organization_id=buyer.pk, counter=limits.OPEN_BIDS, delta=1)
        ledger_services.wallet_hold(organization_id=buyer.pk, amount=held, idempotency_key=f"bid:{bid.pk}:hold",
                                    reference=f"bid:{bid.pk}")
        audit_record(action="bid.open", obj=bid, actor=created_by, organization_id=buyer.pk, ip=ip,
                     data={"held_amount": str(held), "nodes": nodes, "duration_hours": duration_hours,
                           "max_price_per_gpu_hour": str(price), "accelerators": sorted(a.slug for a in accs)})
        bid_id = bid.pk
        transaction.on_commit(lambda: bid_try_match(bid=bid_id), robust=True)
    return bid


def _lock_open(bid: Bid | int) -> Bid:
    pk = bid.pk if isinstance(bid, Bid) else bid
    locked = Bid.objects.select_for_update(of=("self",)).filter(pk=pk).first()
    if locked is None:
        raise NotFound("No such bid.")
    if locked.status != B.OPEN:
        raise Conflict(f"The bid is {locked.status}, not open.", code="invalid_transition")
    return locked


def _release_hold(bid: Bid) -> None:
    ledger_services.wallet_release(organization_id=bid.buyer_id, amount=bid.held_amount,
                                   idempotency_key=f"bid:{bid.pk}:release", reference=f"bid:{bid.pk}")


def _close(bid: Bid | int, *, to: str, actor=None, ip=None, check=None, note: str = "") -> Bid:
    with transaction.atomic():
        locked = _lock_open(bid)
        if check is not None:
            check(locked)
        Bid.objects.filter(pk=locked.pk, status=B.OPEN).update(status=to, updated_at=timezone.now())
        limits.open_order_count(organization_id=locked.buyer_id, counter=limits.OPEN_BIDS, delta=-1)
        _release_hold(locked)
        locked.status = to
        audit_record(action=f"bid.{to}", obj=locked, actor=actor, organization_id=locked.buyer_id, ip=ip,
                     data={"from": B.OPEN, "to": to, "released": str(locked.held_amount), "note": note})
    return locked


def bid_cancel(*, bid: Bid | int, actor=None, ip=None) -> Bid:
    """``open`` → ``cancelled``, the hold released in full. NotFound / Conflict 409 when not open."""
    return _close(bid, to=B.CANCELLED, actor=actor, ip=ip)


def _past_expiry(bid: Bid) -> None:
    if timezone.now() < bid.expires_at:
        raise Conflict("The bid has not expired yet.", code="not_expired")


def bid_expire(*, bid: Bid | int) -> Bid:
    """``open`` past ``expires_at`` → ``expired``, the hold released in full. For the settlement sweep (may run
    inside its own ``SELECT … FOR UPDATE SKIP LOCKED`` transaction). Conflict 409 when not open or not yet due."""
    return _close(bid, to=B.EXPIRED, check=_past_expiry, note="expired")


def bid_match(*, bid: Bid | int, listing_id: int, start: dt.datetime, end: dt.datetime) -> Bid:
    """Fill ``bid`` with a confirmed booking of ``listing_id`` for ``[start, end)``; one transaction.

    Locks the bid (must be open and unexpired), releases its hold, books through ``booking_create(confirm=True)``
    (listing lock, capacity advisory lock, exclusion constraint, cash part held from the wallet) and marks the bid
    ``matched``. Raises ``Conflict`` 409 when the slot was taken meanwhile, the listing was repriced above the bid's
    maximum or the window does not fit the bid; ``ApplicationError`` from the booking (e.g. InsufficientFunds).
    Whatever it raises, everything rolls back: the bid stays open with its hold.
    """
    with transaction.atomic():
        locked = _lock_open(bid)
        if timezone.now() >= locked.expires_at:
            raise Conflict("The bid has expired.", code="expired")
        if (end - start != locked.duration_hours * HOUR or start < locked.earliest_start
                or end > locked.latest_end):
            raise Conflict("The slot does not fit the bid's window.", code="window")
        _release_hold(locked)
        booking = booking_create(buyer=locked.buyer, listing_id=listing_id, nodes=locked.nodes, start=start, end=end,
                                 created_by=locked.created_by, vouchers=list(locked.vouchers), confirm=True)
        if not listing_suits_bid(locked, booking, listing_id):
            raise Conflict("The listing no longer suits the bid.", code="price")
        Bid.objects.filter(pk=locked.pk, status=B.OPEN).update(status=B.MATCHED, booking=booking,
                                                               updated_at=timezone.now())
        limits.open_order_count(organization_id=locked.buyer_id, counter=limits.OPEN_BIDS, delta=-1)
        locked.status, locked.booking = B.MATCHED, booking
        audit_record(action="bid.matched", obj=locked, actor=None, organization_id=locked.buyer_id,
                     data={"from": B.OPEN, "to": B.MATCHED, "booking": booking.pk, "listing": listing_id,
                           "price_per_gpu_hour": str(booking.price_per_gpu_hour),
                           "released": str(locked.held_amount), "cash_amount": str(booking.cash_amount)})
    return locked


# --- what a bid holds and accepts (voucher-aware matching lives below this line) ---------------------------------

def bid_hold_amount(*, price: Decimal, max_gpus_per_node: int, nodes: int, duration_hours: int) -> Decimal:
    """The most cash a fill of the bid can cost: its limit × the largest GPU-hours a fill may take."""
    return to_amount(price * max_gpus_per_node * nodes * duration_hours)


def listing_suits_bid(bid: Bid, booking, listing_id: int) -> bool:
    """Whether ``booking`` (just made for ``bid`` on ``listing_id``, inside ``bid_match``) is one the bid accepts:
    within its price limit, its GPU-hours and its accelerators."""
    return not (booking.price_per_gpu_hour > bid.max_price_per_gpu_hour
                or booking.gpu_hours > bid.max_gpus_per_node * bid.nodes * bid.duration_hours
                or not bid.accelerators.filter(clusters__listings=listing_id).exists())


# --- loading the market for the pure engine --------------------------------------------------------------------

def _origin() -> dt.datetime:
    """Hour index 0: the next whole UTC hour (bookings must start in the future)."""
    return hours.next_hour()


def _index(moment: dt.datetime, origin: dt.datetime) -> int:
    return int((moment - origin) // HOUR)


def market_asks(*, accelerator_ids, origin: dt.datetime, horizon: int) -> list[matching.Ask]:
    """Active listings of ``accelerator_ids`` overlapping ``[origin, origin + horizon h)`` as ``matching.Ask``,
    with each node's free hours (bit h = free during hour h) from the active reservations: three queries."""
    until = origin + horizon * HOUR
    listings = list(Listing.objects.filter(status=Listing.Status.ACTIVE, cluster__accelerator_id__in=accelerator_ids,
                                           available_until__gt=origin, available_from__lt=until)
                    .select_related("cluster__accelerator").order_by("pk"))
    cluster_ids = {listing.cluster_id for listing in listings}
    full = (1 << horizon) - 1
    masks: dict[int, dict[int, int]] = {}
    for cluster_id, node_id in Node.objects.filter(cluster_id__in=cluster_ids).order_by("cluster_id", "index") \
            .values_list("cluster_id", "id"):
        masks.setdefault(cluster_id, {})[node_id] = full
    if cluster_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n.cluster_id, r.node_id, lower(r.period), upper(r.period)"  # noqa: S608
                f" FROM {NodeReservation._meta.db_table} r JOIN {Node._meta.db_table} n ON n.id = r.node_id"
                " WHERE r.active AND n.cluster_id = ANY(%s)"
                " AND r.period && tstzrange(%s, %s, '[)')", [list(cluster_ids), origin, until])
            for cluster_id, node_id, lower, upper in cursor.fetchall():
                first = max(0, _index(lower, origin))
                last = min(horizon, -(-(upper - origin) // HOUR))
                if last > first:
                    masks[cluster_id][node_id] &= ~(((1 << (last - first)) - 1) << first)
    asks = []
    for listing in listings:
        cluster = listing.cluster
        asks.append(matching.Ask(
            listing_id=listing.pk, cluster_id=cluster.pk, accelerator=str(cluster.accelerator_id),
            price=listing.price_per_gpu_hour, gpus_per_node=cluster.gpus_per_node,
            start=max(0, _index(listing.available_from, origin)),
            end=min(horizon, _index(listing.available_until, origin)),
            node_free=tuple(masks.get(cluster.pk, {}).values()), created=listing.pk, min_hours=listing.min_hours))
    return asks


def _engine_bid(bid: Bid, origin: dt.datetime, accelerator_ids) -> matching.Bid:
    return matching.Bid(bid_id=bid.pk, accelerators=frozenset(str(a) for a in accelerator_ids), nodes=bid.nodes,
                        duration_hours=bid.duration_hours, earliest_start=max(0, _index(bid.earliest_start, origin)),
                        latest_end=_index(bid.latest_end, origin), max_price=bid.max_price_per_gpu_hour,
                        created=bid.pk, max_gpus_per_node=bid.max_gpus_per_node)


def _apply(assignment: matching.Assignment, origin: dt.datetime) -> Bid | None:
    try:
        return bid_match(bid=assignment.bid_id, listing_id=assignment.listing_id,
                         start=origin + assignment.start * HOUR, end=origin + assignment.end * HOUR)
    except ApplicationError:
        return None  # slot taken, listing changed, bid closed meanwhile, funds short: the bid stays as it is


def bid_try_match(*, bid: Bid | int) -> Bid | None:
    """Continuous matching of one open bid: ``matching.match_one`` on the current market, applied with
    ``bid_match``. Returns the matched bid, or None (no slot, or the slot was lost to a concurrent booking)."""
    pk = bid.pk if isinstance(bid, Bid) else bid
    row = Bid.objects.filter(pk=pk, status=B.OPEN, expires_at__gt=timezone.now()).first()
    if row is None:
        return None
    accelerator_ids = list(row.accelerators.values_list("pk", flat=True))
    origin = _origin()
    horizon = _index(row.latest_end, origin)
    if horizon < row.duration_hours:
        return None
    engine_bid = _engine_bid(row, origin, accelerator_ids)
    assignment = matching.match_one(engine_bid, market_asks(accelerator_ids=accelerator_ids, origin=origin,
                                                            horizon=horizon))
    return _apply(assignment, origin) if assignment is not None else None


def _engine_market(bids: list[Bid], origin: dt.datetime) -> tuple[list[matching.Bid], list[matching.Ask]]:
    """The engine's view of ``bids`` (non-empty) and of the asks they could take: the free capacity of the
    listings of their accelerators up to the latest of their windows."""
    accs: dict[int, list[int]] = {}
    for bid_id, acc_id in Bid.accelerators.through.objects.filter(bid_id__in=[b.pk for b in bids]) \
            .values_list("bid_id", "accelerator_id"):
        accs.setdefault(bid_id, []).append(acc_id)
    horizon = max(_index(b.latest_end, origin) for b in bids)
    asks = market_asks(accelerator_ids={a for ids in accs.values() for a in ids}, origin=origin, horizon=horizon)
    return [_engine_bid(b, origin, accs.get(b.pk, ())) for b in bids], asks


# A listing's activation matches at most this many open bids (oldest first); the batch clearing does the rest.
LISTING_MATCH_LIMIT = 500


def bids_match_listing(*, listing_id: int) -> int:
    """Continuous matching when ``listing_id`` becomes active: the open, unexpired bids it could serve (accelerator,
    price, window, cluster size, the hold's GPUs per node), oldest first (arrival order, as if each arrived now),
    each take ``matching.match_one``'s slot on the current market — the cheapest, which need not be this listing —
    applied with ``bid_match`` one by one (a lost slot is skipped; that bid stays open). Returns how many matched;
    0 when the listing is gone or no longer active."""
    listing = (Listing.objects.filter(pk=listing_id, status=Listing.Status.ACTIVE)
               .select_related("cluster").first())
    if listing is None:
        return 0
    origin = _origin()
    cluster = listing.cluster
    bids = list(Bid.objects.filter(status=B.OPEN, expires_at__gt=timezone.now(), accelerators=cluster.accelerator_id,
                                   max_price_per_gpu_hour__gte=listing.price_per_gpu_hour,
                                   max_gpus_per_node__gte=cluster.gpus_per_node, nodes__lte=cluster.node_count,
                                   earliest_start__lt=listing.available_until,
                                   latest_end__gt=max(origin, listing.available_from))
                .order_by("pk")[:LISTING_MATCH_LIMIT])
    if not bids:
        return 0
    engine_bids, asks = _engine_market(bids, origin)
    plan = matching.continuous(engine_bids, asks)
    return sum(_apply(a, origin) is not None for a in plan)


@dataclass(frozen=True)
class ClearingResult:
    open_bids: int
    planned: int
    matched: int
    surplus: Decimal


def bids_clear(*, time_budget_s: float = 2.0) -> ClearingResult:
    """Batch clearing: re-plan up to ``CLEAR_BATCH`` open, unexpired bids with ``matching.clear`` and apply the
    plan assignment by assignment (``bid_match``, each its own transaction; conflicts are skipped and the bid
    stays open). Safe to run concurrently with bookings and with itself (the bid lock + open check)."""
    origin = _origin()
    bids = list(Bid.objects.filter(status=B.OPEN, expires_at__gt=timezone.now(), latest_end__gt=origin)
                .order_by("pk")[:CLEAR_BATCH])
    if not bids:
        return ClearingResult(0, 0, 0, Decimal(0))
    engine_bids, asks = _engine_market(bids, origin)
    plan = matching.clear(engine_bids, asks, time_budget_s=time_budget_s)
    matched = [a for a in plan if _apply(a, origin) is not None]
    return ClearingResult(open_bids=len(bids), planned=len(plan), matched=len(matched),
                          surplus=to_amount(matching.total_surplus(matched)))
