"""Writes for bids: place (hold the maximum cash cost), cancel, expire, match (→ a confirmed booking) and the batch
clearing that re-plans all open bids with ``orders.matching.clear``.

Money: placing a bid moves its ``held_amount`` wallet → wallet hold (key ``bid:<id>:hold``); cancel, expiry and a
match each give it back in full (key ``bid:<id>:release`` — only one of them can ever commit, the bid row lock and
the ``open`` status check see to that). A match books through ``orders.services.booking_create(confirm=True)`` in the
same transaction, so the booking's own cash part is held on the same ledger path; the excess is simply not re-held.

Locks: every path here follows ``marketplace.core.locks`` — the bid row first, then (a match) the listing, cluster
capacity, the open-bids counter, vouchers, the wallet's ledger accounts, and the audit events last — and is run
again on a deadlock or serialization failure when it owns the transaction (``Busy`` 409 when that persists).

Vouchers: a bid's limit applies to its NET price (cash per GPU-hour after its vouchers) when it carries vouchers, so
its hold is the maximum net cash (``bid_hold_amount``). Matching pairs it only with listings where all its vouchers
may pay, ranked by net price (``net_price_tables``, computed by ``orders.pricing``); the booking made at the match
recomputes the voucher parts under the vouchers' locks and ``listing_suits_bid`` checks the cash against the limit.
A slot that fails is logged and the bid re-planned (``_apply``).

Resale asks (issue 21): every open resale ask (``orders.models.ResaleAsk``) of an accelerator a bid accepts is part
of the market too (``_resale_market``), at its own price per GPU-hour (the same unit as a listing's). A purchase
of resale time runs to the end of the ask (``resale_services.resale_buy``), so a bid fits a resale ask only in the
slot that ends where the ask ends, on whole nodes of the ask's ``nodes_left``; the nodes it takes are gone from the
ask (``nodes_left`` counts down), the rest of the ask stays open. In the engine such an ask is its own capacity
(cluster id ``-ask id``: its nodes are booked by the seller, so the cluster's listing masks show them busy), with
one engine ask per bid duration (``resale_engine_id``: negative ids, never a listing's) whose window is exactly
the last ``duration`` hours of the ask's. A bid never matches its own organization's resale ask (such a bid gets a
price table without them, ``_engine_market``). Vouchers never pay for resale time (``resale_buy`` charges the
buyer's wallet and returns the seller's voucher share; the buyer's vouchers play no part), so a bid with vouchers
pairs with a resale ask at its CASH price: its limit, which bounds the net cash per GPU-hour, must cover the
ask's price, and its vouchers stay untouched (``resale_suits_bid``). The hold covers that fill: its basis is the
same limit × GPUs × nodes × hours. A match on a resale ask is ``bid_match_resale``: the bid row first, then
``resale_buy``'s own order (the seller's booking, the ask, cluster capacity, the open-bids counter — given back
there —, the seller booking's vouchers, the ledger — the bid's hold released by the first posting of the payment's
``ledger_post_many``), in one transaction. A new resale ask triggers ``bids_match_resale_ask`` (via
``orders.signals.resale_ask_opened`` → ``orders.resale_tasks``), as an activated listing triggers
``bids_match_listing``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import DateTimeField, ExpressionWrapper, F, Max, Q
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Organization
from audit.services import audit_record
from ledger import services as ledger_services
from listings.models import Accelerator, Cluster, Listing, Node
from marketplace.core import hours
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.locks import retry_on_contention
from marketplace.core.money import to_amount, to_price
from marketplace.core.pipeline import advance
from orders import limits, matching, pricing, resale_services
from orders.capacity_selectors import recent_utilisation
from orders.models import Bid, NodeReservation, ResaleAsk, ResaleSale
from orders.services import ReplacedOrder, booking_create, check_hour
from vouchers.models import Voucher

logger = logging.getLogger(__name__)
BidStatus = Bid.Status
HOUR = dt.timedelta(hours=1)
# Bids and matching look at most this far ahead (the per-node free-hour masks grow with it).
MAX_HORIZON = dt.timedelta(days=90)
# A batch clearing loads at most this many open bids (oldest first); the next run takes the rest.
CLEAR_BATCH = 5000


def _int(name: str, value, errors: dict, *, minimum: int = 1, maximum: int = 100_000) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        errors.setdefault(name, []).append(
            gettext("Give a whole number from %(minimum)s to %(maximum)s.") % {"minimum": minimum, "maximum": maximum}
        )
        return None
    return value


def _accelerators(slugs, errors: dict) -> list[Accelerator]:
    slugs = [slugs] if isinstance(slugs, str) else list(slugs or [])
    slugs = [s.slug if isinstance(s, Accelerator) else str(s) for s in slugs]
    if not slugs:
        errors["accelerators"] = [gettext("Name at least one accelerator (slug).")]
        return []
    found = list(Accelerator.objects.filter(slug__in=slugs))
    unknown = sorted(set(slugs) - {a.slug for a in found})
    if unknown:
        errors["accelerators"] = [gettext("Unknown accelerator: %(names)s.") % {"names": ", ".join(unknown)}]
    return found


@retry_on_contention
def bid_place(
    *,
    buyer,
    accelerators,
    nodes,
    duration_hours,
    earliest_start,
    latest_end,
    max_price_per_gpu_hour,
    expires_at=None,
    vouchers=(),
    created_by=None,
    ip: str | None = None,
) -> Bid:
    """Place a bid of ``buyer`` (a startup) and hold its maximum cash cost; then, once committed, try to match it.

    ``accelerators``: slugs (or Accelerator objects); ``earliest_start``/``latest_end``: aware, whole UTC hours,
    future, at least ``duration_hours`` apart, within 90 days; ``expires_at`` (default: the last possible start)
    must be in the future. ``held_amount = max price × G × nodes × duration_hours``, where G is the largest
    ``gpus_per_node`` among clusters of the accepted accelerators that have an active listing now (stored as
    ``max_gpus_per_node``; matching never picks a larger cluster, so a fill never costs more than the hold).

    Raises ``ApplicationError`` 400 with field errors (nothing written), ``InsufficientFunds`` 409 when the wallet
    cannot cover the hold (nothing written), ``Busy`` 409 when contention outlasts the retries. Locks: the new bid,
    the open-bids counter, the wallet's accounts, the audit event last. The match after the commit is
    ``bid_try_match``, whose ``bid_match`` retries contention on its own (it is its own transaction).
    """
    errors: dict[str, list[str]] = {}
    accs = _accelerators(accelerators, errors)
    nodes = _int("nodes", nodes, errors)
    duration_hours = _int("duration_hours", duration_hours, errors, maximum=24 * 90)
    start = check_hour("earliest_start", earliest_start, errors)
    end = check_hour("latest_end", latest_end, errors)
    now = timezone.now()
    if start is not None and start <= now:
        errors.setdefault("earliest_start", []).append(gettext("The earliest start must be in the future."))
    if start is not None and end is not None and duration_hours is not None:
        if end - start < duration_hours * HOUR:
            errors.setdefault("latest_end", []).append(
                gettext("The window must be at least %(hours)s hours long (the duration).") % {"hours": duration_hours}
            )
        if end - now > MAX_HORIZON:
            errors.setdefault("latest_end", []).append(gettext("Bids look at most 90 days ahead."))
    try:
        price = to_price(max_price_per_gpu_hour)
        if not price > 0:
            raise InvalidOperation
    except (InvalidOperation, TypeError, ValueError):
        price = None
        errors["max_price_per_gpu_hour"] = [gettext("Give a price above 0 per GPU-hour.")]
    if expires_at is None and end is not None and duration_hours is not None:
        expires_at = end - duration_hours * HOUR
    if expires_at is not None:
        if not isinstance(expires_at, dt.datetime) or timezone.is_naive(expires_at):
            errors["expires_at"] = [gettext("Give a timezone-aware time (UTC).")]
        elif expires_at <= now:
            errors["expires_at"] = [gettext("The expiry must be in the future.")]
    try:
        voucher_ids = [int(v) for v in vouchers or ()]
    except (TypeError, ValueError):
        voucher_ids, errors["vouchers"] = [], [gettext("Give voucher ids.")]
    if voucher_ids and Voucher.objects.filter(pk__in=voucher_ids, holder=buyer).count() != len(set(voucher_ids)):
        errors["vouchers"] = [gettext("Use vouchers your organization holds.")]
    max_gpus = None
    if accs and "accelerators" not in errors:
        max_gpus = Cluster.objects.filter(accelerator__in=accs, listings__status=Listing.Status.ACTIVE).aggregate(
            m=Max("gpus_per_node")
        )["m"]
        if max_gpus is None:
            errors["accelerators"] = [gettext("No open listing offers these accelerators yet.")]
    if errors:
        raise ApplicationError(gettext("Invalid bid."), errors=errors)

    held = bid_hold_amount(price=price, max_gpus_per_node=max_gpus, nodes=nodes, duration_hours=duration_hours)
    with transaction.atomic():
        bid = Bid.objects.create(
            buyer=buyer,
            created_by=created_by,
            nodes=nodes,
            duration_hours=duration_hours,
            earliest_start=start,
            latest_end=end,
            max_price_per_gpu_hour=price,
            max_gpus_per_node=max_gpus,
            vouchers=voucher_ids,
            expires_at=expires_at,
            held_amount=held,
        )
        bid.accelerators.set(accs)
        limits.open_order_count(organization_id=buyer.pk, counter=limits.OPEN_BIDS, delta=1)
        ledger_services.wallet_hold(
            organization_id=buyer.pk, amount=held, idempotency_key=f"bid:{bid.pk}:hold", reference=f"bid:{bid.pk}"
        )
        data = {
            "held_amount": str(held),
            "nodes": nodes,
            "duration_hours": duration_hours,
            "max_price_per_gpu_hour": str(price),
            "accelerators": sorted(a.slug for a in accs),
        }
        audit_record(action="bid.open", obj=bid, actor=created_by, organization_id=buyer.pk, ip=ip, data=data)
        bid_id = bid.pk
        transaction.on_commit(lambda: bid_try_match(bid=bid_id), robust=True)
    return bid


def _lock_open(bid: Bid | int) -> Bid:
    """The bid's row, locked. Raises ``NotFound``, and ``Conflict`` (``invalid_transition``) when it is no longer
    open (every move out of ``open`` is final: ``Bid.TRANSITIONS``)."""
    pk = bid.pk if isinstance(bid, Bid) else bid
    locked = Bid.objects.select_for_update(of=("self",)).filter(pk=pk).first()
    if locked is None:
        raise NotFound(gettext("No such bid."))
    if not locked.available_statuses():
        raise Conflict(
            gettext("The bid is %(status)s, not open.") % {"status": locked.get_status_display().lower()},
            code="invalid_transition",
        )
    return locked


def _release_hold(bid: Bid) -> None:
    ledger_services.wallet_release(
        organization_id=bid.buyer_id,
        amount=bid.held_amount,
        idempotency_key=f"bid:{bid.pk}:release",
        reference=f"bid:{bid.pk}",
    )


@retry_on_contention
def _close(bid: Bid | int, *, to: str, actor=None, ip=None, check=None, note: str = "") -> Bid:
    """``open`` → ``to``, the hold released in full, and its audit event. Locks: bid row → open-bids counter →
    wallet accounts."""
    with transaction.atomic():
        locked = _lock_open(bid)
        if check is not None:
            check(locked)
        advance(locked, to)
        limits.open_order_count(organization_id=locked.buyer_id, counter=limits.OPEN_BIDS, delta=-1)
        _release_hold(locked)
        audit_record(
            action=f"bid.{to}",
            obj=locked,
            actor=actor,
            organization_id=locked.buyer_id,
            ip=ip,
            data={"from": BidStatus.OPEN, "to": to, "released": str(locked.held_amount), "note": note},
        )
    return locked


def bid_cancel(*, bid: Bid | int, actor=None, ip=None) -> Bid:
    """``open`` → ``cancelled``, the hold released in full. NotFound / Conflict 409 when not open."""
    return _close(bid, to=BidStatus.CANCELLED, actor=actor, ip=ip)


def _past_expiry(bid: Bid) -> None:
    if timezone.now() < bid.expires_at:
        raise Conflict(gettext("The bid has not expired yet."), code="not_expired")


def bid_expire(*, bid: Bid | int) -> Bid:
    """``open`` past ``expires_at`` → ``expired``, the hold released in full. For the settlement sweep (may run
    inside its own ``SELECT … FOR UPDATE SKIP LOCKED`` transaction). Conflict 409 when not open or not yet due."""
    return _close(bid, to=BidStatus.EXPIRED, check=_past_expiry, note="expired")


@retry_on_contention
def bid_match(*, bid: Bid | int, listing_id: int, start: dt.datetime, end: dt.datetime) -> Bid:
    """Fill ``bid`` with a confirmed booking of ``listing_id`` for ``[start, end)``; one transaction.

    In the lock order: locks the bid (must be open and unexpired), then books through
    ``booking_create(confirm=True, replaces=…)``, which locks the listing, takes cluster capacity (advisory lock,
    exclusion constraint), gives back the bid's open-bids count, holds the vouchers' parts, and in the ledger step
    releases the bid's hold before holding the booking's cash part; then marks the bid ``matched`` and records
    the audit events. Raises ``Conflict`` 409 when the slot was taken meanwhile, the listing was repriced above
    the bid's maximum or the window does not fit the bid; ``ApplicationError`` from the booking (e.g.
    InsufficientFunds); ``Busy`` 409 when contention outlasts the retries (a deadlock or serialization failure is
    run again from the start when this owns the transaction, e.g. the match on a bid's commit). Whatever it
    raises, everything rolls back: the bid stays open with its hold.
    """
    with transaction.atomic():
        locked = _lock_open(bid)
        _check_slot(locked, start, end)
        booking = booking_create(
            buyer=locked.buyer,
            listing_id=listing_id,
            nodes=locked.nodes,
            start=start,
            end=end,
            created_by=locked.created_by,
            vouchers=list(locked.vouchers),
            confirm=True,
            replaces=_replaced(locked),
        )
        if not listing_suits_bid(locked, booking, listing_id):
            raise Conflict(gettext("The listing no longer suits the bid."), code="price")
        advance(locked, BidStatus.MATCHED, booking=booking)
        data = {
            "from": BidStatus.OPEN,
            "to": BidStatus.MATCHED,
            "booking": booking.pk,
            "listing": listing_id,
            "price_per_gpu_hour": str(booking.price_per_gpu_hour),
            "released": str(locked.held_amount),
            "cash_amount": str(booking.cash_amount),
        }
        audit_record(action="bid.matched", obj=locked, actor=None, organization_id=locked.buyer_id, data=data)
    return locked


def _check_slot(bid: Bid, start: dt.datetime, end: dt.datetime) -> None:
    """``Conflict`` 409 when the (locked, open) bid has expired or ``[start, end)`` does not fit its window."""
    if timezone.now() >= bid.expires_at:
        raise Conflict(gettext("The bid has expired."), code="expired")
    if end - start != bid.duration_hours * HOUR or start < bid.earliest_start or end > bid.latest_end:
        raise Conflict(gettext("The slot does not fit the bid's window."), code="window")


def _replaced(bid: Bid) -> ReplacedOrder:
    """What a fill takes over from the bid: its open-bids count and its whole hold (released exactly once, under
    the one key that cancel and expiry use too)."""
    return ReplacedOrder(
        counter=limits.OPEN_BIDS,
        hold_amount=bid.held_amount,
        release_key=f"bid:{bid.pk}:release",
        reference=f"bid:{bid.pk}",
    )


@retry_on_contention
def bid_match_resale(*, bid: Bid | int, ask_id: int, start: dt.datetime, end: dt.datetime) -> Bid:
    """Fill ``bid`` by buying its nodes of resale ask ``ask_id`` for ``[start, end)`` (which must end where the
    ask ends); one transaction.

    In the lock order: locks the bid (must be open and unexpired, the slot inside its window), checks the ask
    suits it (``resale_suits_bid``: not its own organization's, cash price within its limit, accelerator, GPUs per
    node), then buys through ``resale_services.resale_buy(replaces=…)``, which locks the seller's booking and the
    ask, splits the reservations under the cluster capacity lock, gives back the bid's open-bids count, locks the
    seller booking's vouchers and, in its ledger step, releases the bid's hold before paying the seller and the
    voucher share from the wallet; then marks the bid ``matched`` with the buyer's new booking and records the
    audit event. Raises ``Conflict`` 409 (the ask is the bid's own, no longer suits it, or was sold or withdrawn
    meanwhile; the slot does not fit), ``NotFound`` (no open ask), ``ApplicationError`` from the purchase (e.g.
    ``InsufficientFunds``), ``Busy`` 409 when contention outlasts the retries. Whatever it raises, everything rolls
    back: the bid stays open with its hold.
    """
    with transaction.atomic():
        locked = _lock_open(bid)
        _check_slot(locked, start, end)
        ask = ResaleAsk.objects.select_related("listing__cluster").filter(pk=ask_id, status=ResaleAsk.Status.OPEN)
        ask = ask.first()
        if ask is None:
            raise NotFound(gettext("No open resale ask with this id."))
        if ask.seller_id == locked.buyer_id:
            raise Conflict(gettext("A bid never buys its own organization's resale ask."), code="own_ask")
        if not resale_suits_bid(locked, ask):
            raise Conflict(gettext("The resale ask no longer suits the bid."), code="price")
        sale = resale_services.resale_buy(
            ask_id=ask.pk,
            buyer=locked.buyer,
            nodes=locked.nodes,
            start=start,
            end=end,
            created_by=locked.created_by,
            replaces=_replaced(locked),
        )
        booking = sale.booking
        advance(locked, BidStatus.MATCHED, booking=booking)
        data = {
            "from": BidStatus.OPEN,
            "to": BidStatus.MATCHED,
            "booking": booking.pk,
            "listing": ask.listing_id,
            "resale_ask": ask.pk,
            "resale_sale": sale.pk,
            "price_per_gpu_hour": str(sale.price_per_gpu_hour),
            "released": str(locked.held_amount),
            "cash_amount": str(sale.amount),
        }
        audit_record(action="bid.matched", obj=locked, actor=None, organization_id=locked.buyer_id, data=data)
    return locked


# --- what a bid holds and accepts (voucher-aware matching lives below this line) ---------------------------------


def bid_hold_amount(*, price: Decimal, max_gpus_per_node: int, nodes: int, duration_hours: int) -> Decimal:
    """The most cash a fill of the bid can cost: its limit × the largest GPU-hours a fill may take.

    For a bid with vouchers the limit bounds the NET price (the cash per GPU-hour after its vouchers:
    ``listing_suits_bid``), so this is the maximum net cash, not the gross: the bid may fill on a listing priced
    above its limit when its vouchers bring the cash within it, and still never needs more than it holds."""
    return to_amount(price * max_gpus_per_node * nodes * duration_hours)


def listing_suits_bid(bid: Bid, booking, listing_id: int) -> bool:
    """Whether ``booking`` (just made for ``bid`` on ``listing_id``, inside ``bid_match``) is one the bid accepts:
    within its price limit, its GPU-hours and its accelerators.

    The price limit: a plain bid's bounds the listing's price per GPU-hour; a bid with vouchers' bounds the cash it
    pays per GPU-hour (``cash_amount ≤ limit × gpu_hours``), with the voucher parts the booking holds — recomputed
    under the voucher locks at this moment, so possibly lower than when the bid was planned."""
    limit = bid.max_price_per_gpu_hour
    price_ok = booking.cash_amount <= limit * booking.gpu_hours if bid.vouchers else booking.price_per_gpu_hour <= limit
    return (
        price_ok
        and booking.gpu_hours <= bid.max_gpus_per_node * bid.nodes * bid.duration_hours
        and bid.accelerators.filter(clusters__listings=listing_id).exists()
    )


def resale_suits_bid(bid: Bid, ask: ResaleAsk) -> bool:
    """Whether resale ask ``ask`` (its ``listing__cluster`` loaded) may fill ``bid``: another organization's, of an
    accelerator it accepts, on a cluster no larger per node than its hold's basis, at a price per GPU-hour within
    its limit. The price is cash for every bid: vouchers never pay for resale time, so a bid with vouchers (whose
    limit bounds its net cash) pays the ask's price in full and its vouchers stay untouched."""
    cluster = ask.listing.cluster
    return (
        ask.seller_id != bid.buyer_id
        and ask.price_per_gpu_hour <= bid.max_price_per_gpu_hour
        and cluster.gpus_per_node <= bid.max_gpus_per_node
        and bid.accelerators.filter(pk=cluster.accelerator_id).exists()
    )


# --- loading the market for the pure engine --------------------------------------------------------------------


def _origin() -> dt.datetime:
    """Hour index 0: the next whole UTC hour (bookings must start in the future)."""
    return hours.next_hour()


def _index(moment: dt.datetime, origin: dt.datetime) -> int:
    return int((moment - origin) // HOUR)


def _ceil_index(moment: dt.datetime, origin: dt.datetime) -> int:
    """The index of the first whole hour that starts at or after ``moment``."""
    return int(-(-(moment - origin) // HOUR))


def _whole_hours(start: dt.datetime, end: dt.datetime, origin: dt.datetime) -> tuple[int, int]:
    """``(first, last)``: the hour indexes of the whole hours inside ``[start, end)`` from the horizon's start on
    (``last <= first`` when there is none)."""
    return max(0, _ceil_index(start, origin)), _index(end, origin)


def _market(*, accelerator_ids, origin: dt.datetime, horizon: int) -> tuple[list[Listing], list[matching.Ask]]:
    """Active listings of ``accelerator_ids`` overlapping ``[origin, origin + horizon h)`` and the same as
    ``matching.Ask``, with each node's free hours (bit h = free during hour h) from the active reservations: three
    queries."""
    until = origin + horizon * HOUR
    listings = list(
        Listing.objects.filter(
            status=Listing.Status.ACTIVE,
            cluster__accelerator_id__in=accelerator_ids,
            available_until__gt=origin,
            available_from__lt=until,
        )
        .select_related("cluster__accelerator")
        .order_by("pk")
    )
    cluster_ids = {listing.cluster_id for listing in listings}
    full = (1 << horizon) - 1
    masks: dict[int, dict[int, int]] = {}
    for cluster_id, node_id in (
        Node.objects.filter(cluster_id__in=cluster_ids).order_by("cluster_id", "index").values_list("cluster_id", "id")
    ):
        masks.setdefault(cluster_id, {})[node_id] = full
    overlapping = NodeReservation.objects.filter(
        active=True, node__cluster_id__in=cluster_ids, period__overlap=DateTimeTZRange(origin, until, "[)")
    ).values_list("node__cluster_id", "node_id", "period")
    for cluster_id, node_id, period in overlapping if cluster_ids else ():
        first = max(0, _index(period.lower, origin))
        last = min(horizon, _ceil_index(period.upper, origin))
        if last > first:
            masks[cluster_id][node_id] &= ~(((1 << (last - first)) - 1) << first)
    asks = []
    for listing in listings:
        cluster = listing.cluster
        asks.append(
            matching.Ask(
                listing_id=listing.pk,
                cluster_id=cluster.pk,
                accelerator=str(cluster.accelerator_id),
                price=listing.price_per_gpu_hour,
                gpus_per_node=cluster.gpus_per_node,
                start=max(0, _index(listing.available_from, origin)),
                end=min(horizon, _index(listing.available_until, origin)),
                node_free=tuple(masks.get(cluster.pk, {}).values()),
                created=listing.pk,
                min_hours=listing.min_hours,
            )
        )
    return listings, asks


def market_asks(*, accelerator_ids, origin: dt.datetime, horizon: int) -> list[matching.Ask]:
    """``_market``'s asks only."""
    return _market(accelerator_ids=accelerator_ids, origin=origin, horizon=horizon)[1]


# Engine ids of resale asks: one engine ask per (resale ask, bid duration), ``-(ask id × span + duration)``; the span
# exceeds the longest bid (90 days of hours), so the id gives both back, and being negative it is never a listing's.
RESALE_ID_SPAN = 4096


def resale_engine_id(ask_id: int, duration_hours: int) -> int:
    """The engine's listing id of resale ask ``ask_id`` offered to bids of ``duration_hours`` hours."""
    return -(ask_id * RESALE_ID_SPAN + duration_hours)


def resale_ask_of(engine_listing_id: int) -> int | None:
    """The resale ask behind an engine listing id (``resale_engine_id``); None for a listing's own id."""
    return (-engine_listing_id) // RESALE_ID_SPAN if engine_listing_id < 0 else None


def _resale_market(
    *, accelerator_ids, origin: dt.datetime, horizon: int, durations
) -> tuple[list[ResaleAsk], list[matching.Ask]]:
    """Open resale asks of ``accelerator_ids`` whose booking may still be resold and that end inside
    ``[origin, origin + horizon h)``, and the same as ``matching.Ask``: one query.

    Each is its own capacity (cluster id ``-ask id``): ``nodes_left`` nodes, each free only in the whole hours of
    the ask's window from the origin on. A purchase runs to the end of the ask (``resale_buy``), so for each of
    ``durations`` (the bids' hours) that fits the window there is one engine ask whose window is the last
    ``duration`` hours and whose minimum is ``duration`` hours: a bid fits it only in the slot ending where the ask
    ends. Its price is the ask's price per GPU-hour, the unit of a listing's. Asks ending beyond the horizon are
    left out (no bid of the market can end there)."""
    until = origin + horizon * HOUR
    rows = list(
        ResaleAsk.objects.filter(
            status=ResaleAsk.Status.OPEN,
            booking__status__in=resale_services.RESELLABLE,
            listing__cluster__accelerator_id__in=accelerator_ids,
            end__gt=origin,
            end__lte=until,
        )
        .select_related("listing__cluster")
        .order_by("pk")
    )
    durations = sorted(set(durations))
    asks = []
    for row in rows:
        if (row.end - origin) % HOUR:
            continue  # not on the hour grid (cannot happen for whole-hour asks): a fill could not end there
        first, last = _whole_hours(row.start, row.end, origin)
        if last <= first:
            continue
        cluster = row.listing.cluster
        node_free = (((1 << (last - first)) - 1) << first,) * row.nodes_left
        for duration in durations:
            if duration > last - first:
                break
            asks.append(
                matching.Ask(
                    listing_id=resale_engine_id(row.pk, duration),
                    cluster_id=-row.pk,
                    accelerator=str(cluster.accelerator_id),
                    price=row.price_per_gpu_hour,
                    gpus_per_node=cluster.gpus_per_node,
                    start=last - duration,
                    end=last,
                    node_free=node_free,
                    created=row.pk,
                    min_hours=duration,
                )
            )
    return rows, asks


def net_price_tables(
    bids: list[Bid], listings: list[Listing], accelerators: dict[int, list[int]]
) -> dict[int, dict[int, Decimal]]:
    """For each bid of ``bids`` that carries vouchers: ``{listing id: net price per GPU-hour}`` over the
    ``listings`` of its accelerators (``accelerators``: bid id → accelerator ids) and GPUs-per-node cap where ALL
    its vouchers may pay (``orders.pricing``, i.e. ``vouchers.rules.compute_parts`` without ``RulesError``), for a
    fill of its nodes × duration on that cluster. Plain bids are absent. Reads only: per buyer, the listings'
    booking contexts once; per set of vouchers, their candidates once.

    A bid whose vouchers are no longer all its buyer's gets an empty table (it can match nothing) and a log line.
    """
    voucher_bids = [b for b in bids if b.vouchers]
    if not voucher_bids:
        return {}
    now = timezone.now()
    listing_ids = [listing.pk for listing in listings]
    buyers = Organization.objects.in_bulk({b.buyer_id for b in voucher_bids})
    # The clusters' 7-day utilisation (a listing fact of the vouchers' idle-capacity rule), once for every buyer.
    utilisation = recent_utilisation({listing.cluster for listing in listings}, now=now)
    contexts: dict[int, dict] = {}
    pricers: dict[tuple[int, frozenset], pricing.NetPricer | None] = {}
    tables: dict[int, dict[int, Decimal]] = {}
    for bid in voucher_bids:
        buyer = buyers[bid.buyer_id]
        key = (buyer.pk, frozenset(bid.vouchers))
        if key not in pricers:
            try:
                vouchers = pricing.buyer_vouchers(buyer, sorted(key[1]))
            except ApplicationError as exc:
                logger.warning("bid %s: its vouchers cannot be priced (%s); it matches nothing", bid.pk, exc.errors)
                pricers[key] = None
            else:
                if buyer.pk not in contexts:
                    contexts[buyer.pk] = pricing.listing_contexts(buyer, listing_ids, now, utilisation=utilisation)
                pricers[key] = pricing.NetPricer(buyer=buyer, vouchers=vouchers, contexts=contexts[buyer.pk], now=now)
        pricer, table = pricers[key], {}
        tables[bid.pk] = table
        if pricer is None:
            continue
        accepted = set(accelerators.get(bid.pk, ()))
        for listing in listings:
            cluster = listing.cluster
            if cluster.accelerator_id not in accepted or cluster.gpus_per_node > bid.max_gpus_per_node:
                continue
            net = pricer.net_price(
                listing.pk,
                price=listing.price_per_gpu_hour,
                gpu_hours=cluster.gpus_per_node * bid.nodes * bid.duration_hours,
            )
            if net is not None:
                table[listing.pk] = net
    return tables


def _engine_bid(bid: Bid, origin: dt.datetime, accelerator_ids, net_prices: dict | None = None) -> matching.Bid:
    return matching.Bid(
        bid_id=bid.pk,
        accelerators=frozenset(str(a) for a in accelerator_ids),
        nodes=bid.nodes,
        duration_hours=bid.duration_hours,
        earliest_start=max(0, _index(bid.earliest_start, origin)),
        latest_end=_index(bid.latest_end, origin),
        max_price=bid.max_price_per_gpu_hour,
        created=bid.pk,
        max_gpus_per_node=bid.max_gpus_per_node,
        net_prices=net_prices,
    )


def _engine_market(bids: list[Bid], origin: dt.datetime) -> tuple[list[matching.Bid], list[matching.Ask]]:
    """The engine's view of ``bids`` (non-empty) and of the asks they could take: the free capacity of the
    listings of their accelerators up to the latest of their windows, and the open resale asks of those
    accelerators (``_resale_market``).

    Price tables (``matching.Bid.net_prices``: only the asks in it may fill the bid, at the price it names): a bid
    with vouchers gets its net prices on listings (``net_price_tables``) plus the resale asks at their cash price;
    a plain bid whose organization sells one of the resale asks gets every listing and resale ask at its price
    except its own asks; other plain bids need none."""
    accs: dict[int, list[int]] = {}
    for bid_id, acc_id in Bid.accelerators.through.objects.filter(bid_id__in=[b.pk for b in bids]).values_list(
        "bid_id", "accelerator_id"
    ):
        accs.setdefault(bid_id, []).append(acc_id)
    horizon = max(_index(b.latest_end, origin) for b in bids)
    accelerator_ids = {a for ids in accs.values() for a in ids}
    listings, asks = _market(accelerator_ids=accelerator_ids, origin=origin, horizon=horizon)
    resales, resale_asks = _resale_market(
        accelerator_ids=accelerator_ids, origin=origin, horizon=horizon, durations={b.duration_hours for b in bids}
    )
    tables = net_price_tables(bids, listings, accs)
    seller_of = {-row.pk: row.seller_id for row in resales}  # engine cluster id → the selling organization
    sellers = set(seller_of.values())
    for bid in bids:
        if not bid.vouchers and bid.buyer_id not in sellers:
            continue
        if bid.vouchers:
            table = tables.setdefault(bid.pk, {})
        else:
            table = tables[bid.pk] = {a.listing_id: a.price for a in asks}
        table.update((a.listing_id, a.price) for a in resale_asks if seller_of[a.cluster_id] != bid.buyer_id)
    return [_engine_bid(b, origin, accs.get(b.pk, ()), tables.get(b.pk)) for b in bids], [*asks, *resale_asks]


# --- applying a plan: a failed slot re-plans the bid -------------------------------------------------------------

# How many slots one bid tries per matching run: the planned one, then re-plans on the current market.
MATCH_ATTEMPTS = 3


def _plan_one(bid_id: int) -> tuple[matching.Assignment, dt.datetime] | None:
    """Continuous matching's choice for one open, unexpired bid on the current market (``matching.match_one``,
    with its net-price table when it carries vouchers) and the origin its hours count from; None when the bid is
    no longer open or nothing fits."""
    row = Bid.objects.filter(pk=bid_id, status=BidStatus.OPEN, expires_at__gt=timezone.now()).first()
    if row is None:
        return None
    origin = _origin()
    if _index(row.latest_end, origin) < row.duration_hours:
        return None
    engine_bids, asks = _engine_market([row], origin)
    assignment = matching.match_one(engine_bids[0], asks)
    return None if assignment is None else (assignment, origin)


def _slot_name(engine_listing_id: int) -> str:
    ask_id = resale_ask_of(engine_listing_id)
    return f"listing {engine_listing_id}" if ask_id is None else f"resale ask {ask_id}"


def _apply(assignment: matching.Assignment, origin: dt.datetime) -> Bid | None:
    """Fill the bid of ``assignment`` with ``bid_match`` (``bid_match_resale`` on a resale ask); the matched bid,
    or None when it stays open.

    A slot that fails (taken meanwhile, a voucher refused or paying less under the locks, the listing repriced or
    paused, funds short, the bid closed) is logged with its reason and the bid re-planned on the current market
    (``_plan_one``), up to ``MATCH_ATTEMPTS`` slots in all; a re-plan that offers a slot already tried, or none, ends
    it (logged too): the bid stays open for the next run. Nothing is dropped silently."""
    tried: set[tuple[int, dt.datetime]] = set()
    bid_id = assignment.bid_id
    for attempt in range(1, MATCH_ATTEMPTS + 1):
        start, end = origin + assignment.start * HOUR, origin + assignment.end * HOUR
        tried.add((assignment.listing_id, start))
        ask_id = resale_ask_of(assignment.listing_id)
        try:
            if ask_id is not None:
                return bid_match_resale(bid=bid_id, ask_id=ask_id, start=start, end=end)
            return bid_match(bid=bid_id, listing_id=assignment.listing_id, start=start, end=end)
        except ApplicationError as exc:
            logger.info(
                "bid %s: slot on %s from %s failed (attempt %s of %s): %s %s %s",
                bid_id,
                _slot_name(assignment.listing_id),
                start.isoformat(),
                attempt,
                MATCH_ATTEMPTS,
                exc.code,
                exc.message,
                exc.errors or "",
            )
        if attempt == MATCH_ATTEMPTS:
            break
        replanned = _plan_one(bid_id)
        if replanned is None:
            logger.info("bid %s: no other slot on the current market (or no longer open); not matched", bid_id)
            return None
        assignment, origin = replanned
        if (assignment.listing_id, origin + assignment.start * HOUR) in tried:
            logger.warning(
                "bid %s: the current market still offers the slot that failed (%s); left open for the next run",
                bid_id,
                _slot_name(assignment.listing_id),
            )
            return None
    logger.warning("bid %s: not matched after %s slots; left open for the next run", bid_id, MATCH_ATTEMPTS)
    return None


def bid_try_match(*, bid: Bid | int) -> Bid | None:
    """Continuous matching of one open bid: ``matching.match_one`` on the current market of listings and resale
    asks (a bid with vouchers: listings only where they may pay, by net price; resale asks at their cash price),
    applied with ``_apply`` (re-planned if the slot fails). Returns the matched
    bid, or None (no slot, or none of the slots tried could be booked)."""
    pk = bid.pk if isinstance(bid, Bid) else bid
    planned = _plan_one(pk)
    return _apply(*planned) if planned is not None else None


# A listing's activation matches at most this many open bids (oldest first); the batch clearing does the rest.
LISTING_MATCH_LIMIT = 500


def bids_match_listing(*, listing_id: int) -> int:
    """Continuous matching when ``listing_id`` becomes active: the open, unexpired bids it could serve (accelerator,
    price — any price for a bid with vouchers, whose limit bounds the net price —, window, cluster size, the hold's
    GPUs per node), oldest first (arrival order, as if each arrived now), each take ``matching.match_one``'s slot on
    the current market — the cheapest for it, which need not be this listing — applied with ``_apply`` one by one
    (a lost slot re-plans that bid). Returns how many matched; 0 when the listing is gone or no longer active."""
    listing = Listing.objects.filter(pk=listing_id, status=Listing.Status.ACTIVE).select_related("cluster").first()
    if listing is None:
        return 0
    origin = _origin()
    cluster = listing.cluster
    bids = list(
        Bid.objects.filter(
            Q(max_price_per_gpu_hour__gte=listing.price_per_gpu_hour) | Q(vouchers__len__gt=0),
            status=BidStatus.OPEN,
            expires_at__gt=timezone.now(),
            accelerators=cluster.accelerator_id,
            max_gpus_per_node__gte=cluster.gpus_per_node,
            nodes__lte=cluster.node_count,
            earliest_start__lt=listing.available_until,
            latest_end__gt=max(origin, listing.available_from),
        ).order_by("pk")[:LISTING_MATCH_LIMIT]
    )
    return _match_in_arrival_order(bids, origin)


def _match_in_arrival_order(bids: list[Bid], origin: dt.datetime) -> int:
    """Continuous matching of ``bids`` (oldest first) on the current market, each booked with ``_apply`` in turn;
    how many matched."""
    if not bids:
        return 0
    engine_bids, asks = _engine_market(bids, origin)
    plan = matching.continuous(engine_bids, asks)
    return sum(_apply(a, origin) is not None for a in plan)


def bids_match_resale_ask(*, ask_id: int) -> int:
    """Continuous matching when resale ask ``ask_id`` opens: the open, unexpired bids of other organizations it
    could serve (accelerator, a limit at or above its price — cash for every bid, vouchers never pay for resale —,
    the hold's GPUs per node, at most its nodes left, a duration inside its window, a window that lets the fill
    end where the ask ends), oldest first, each take ``matching.match_one``'s slot on the current market (the
    cheapest for it, which need not be this ask), applied with ``_apply`` one by one. Returns how many matched; 0
    when the ask is gone, no longer open or its booking can no longer be resold."""
    ask = (
        ResaleAsk.objects.filter(
            pk=ask_id, status=ResaleAsk.Status.OPEN, booking__status__in=resale_services.RESELLABLE
        )
        .select_related("listing__cluster")
        .first()
    )
    if ask is None:
        return 0
    origin = _origin()
    cluster = ask.listing.cluster
    first, last = _whole_hours(ask.start, ask.end, origin)
    window_hours = last - first
    if window_hours < 1:
        return 0
    fill_from = ExpressionWrapper(F("earliest_start") + F("duration_hours") * HOUR, output_field=DateTimeField())
    bids = list(
        Bid.objects.annotate(fill_from=fill_from)
        .filter(
            status=BidStatus.OPEN,
            expires_at__gt=timezone.now(),
            accelerators=cluster.accelerator_id,
            max_price_per_gpu_hour__gte=ask.price_per_gpu_hour,
            max_gpus_per_node__gte=cluster.gpus_per_node,
            nodes__lte=ask.nodes_left,
            duration_hours__lte=window_hours,
            fill_from__lte=ask.end,
            latest_end__gte=ask.end,
        )
        .exclude(buyer_id=ask.seller_id)
        .order_by("pk")[:LISTING_MATCH_LIMIT]
    )
    return _match_in_arrival_order(bids, origin)


@dataclass(frozen=True)
class ClearingResult:
    open_bids: int
    planned: int
    matched: int
    surplus: Decimal


def bids_clear(*, time_budget_s: float = 2.0) -> ClearingResult:
    """Batch clearing: re-plan up to ``CLEAR_BATCH`` open, unexpired bids with ``matching.clear`` (bids with
    vouchers by their net prices, where their vouchers may pay) and apply the plan assignment by assignment
    (``_apply``: ``bid_match``, each its own transaction; a failed slot re-plans that bid on the current market).
    ``surplus`` is that of the fills made (net prices for voucher bids; a re-planned fill counts at its new slot).
    Safe to run concurrently with bookings and with itself (the bid lock + open check)."""
    origin = _origin()
    bids = list(
        Bid.objects.filter(status=BidStatus.OPEN, expires_at__gt=timezone.now(), latest_end__gt=origin).order_by("pk")[
            :CLEAR_BATCH
        ]
    )
    if not bids:
        return ClearingResult(0, 0, 0, Decimal(0))
    engine_bids, asks = _engine_market(bids, origin)
    plan = matching.clear(engine_bids, asks, time_budget_s=time_budget_s)
    by_id = {b.bid_id: b for b in engine_bids}
    matched = [(a, done) for a in plan if (done := _apply(a, origin)) is not None]
    surplus = sum(
        ((by_id[a.bid_id].max_price - _paid_per_gpu_hour(done)) * done.booking.gpu_hours for a, done in matched),
        Decimal(0),
    )
    return ClearingResult(open_bids=len(bids), planned=len(plan), matched=len(matched), surplus=to_amount(surplus))


def _paid_per_gpu_hour(bid: Bid) -> Decimal:
    """What a matched bid pays per GPU-hour as its limit counts it: the price, or the cash per GPU-hour when it
    carries vouchers — except on resale time, always paid in cash at the price (its booking's amounts are zero:
    the purchase paid the seller directly)."""
    booking = bid.booking
    if bid.vouchers and not ResaleSale.objects.filter(booking_id=booking.pk).exists():
        return booking.cash_amount / booking.gpu_hours
    return booking.price_per_gpu_hour
