"""Writes for bookings: quotes, booking creation (capacity + payment hold in one transaction) and the status pipeline.

Capacity cannot be double-booked: each booked node is a ``NodeReservation`` row and PostgreSQL's exclusion
constraint refuses two active, overlapping reservations of one node. Money cannot be lost: the cash part of a
booking moves wallet → wallet hold in the ledger in the same transaction as the reservation, and goes back in full
when the booking is cancelled before its start or its hold expires.

Every write here takes its locks in the one order of ``marketplace.core.locks`` (booking row → listing → cluster
capacity → open-order counters → vouchers → ledger accounts → audit last) and is retried on contention there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext

from audit.services import audit_event, audit_record, audit_record_many
from ledger import services as ledger_services
from listings.models import Listing
from marketplace.core import hours
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.locks import lock_cluster_capacity, retry_on_contention
from marketplace.core.money import ZERO, to_amount
from marketplace.core.pipeline import advance, advance_many
from marketplace.core.zones import local_moment
from orders import limits, sql
from orders.capacity_selectors import recent_utilisation
from orders.models import Booking, BookingStatusChange, NodeReservation, ResaleSale
from vouchers import services as voucher_services

BookingStatus = Booking.Status

# Statuses whose node reservations are active and whose payment is still held.
OPEN_STATUSES = tuple(Booking.statuses_leading_to(BookingStatus.CANCELLED))
# How many times a booking re-chooses nodes after losing a race to a concurrent booking before answering 409.
NODE_CHOICE_ATTEMPTS = 3


@dataclass(frozen=True)
class Quote:
    """The price of ``nodes`` whole nodes of a listing for ``[start, end)``.

    ``voucher_parts`` is a list of ``{"voucher": id, "amount": Decimal, "rule": str, "ratio": Decimal,
    "explanation": str}``, one per voucher, soonest expiry first; ``rule`` names the limit that bound the part
    (``vouchers.rules.LIMITS``) and ``explanation`` says it in plain words;
    ``subtotal == voucher_amount + cash_amount``. ``cluster_utilisation``: the cluster's 7-day utilisation the
    vouchers were priced with (read only when vouchers are named; the booking holds them with the same fact).
    """

    listing_id: int
    nodes: int
    start: dt.datetime
    end: dt.datetime
    hours: int
    gpu_hours: int
    price_per_gpu_hour: Decimal
    subtotal: Decimal
    voucher_parts: list[dict] = field(default_factory=list)
    voucher_amount: Decimal = ZERO
    cash_amount: Decimal = ZERO
    cluster_utilisation: Decimal | None = None


def check_hour(name: str, value, errors: dict[str, list[str]]) -> dt.datetime | None:
    """``value`` as a UTC datetime on a whole hour, or None after adding the reason to ``errors[name]``."""
    problem = hours.hour_error(value)
    if problem:
        errors.setdefault(name, []).append(problem)
        return None
    return value.astimezone(dt.UTC)


def quote_compute(*, listing: Listing, nodes, start, end, buyer=None, vouchers=()) -> Quote:
    """Price a booking of ``nodes`` whole nodes of ``listing`` for ``[start, end)``; writes nothing.

    Raises ``ApplicationError`` 400 with field errors (``listing``, ``nodes``, ``start``, ``end``, ``vouchers``)
    when the listing is not active, a time is naive or not on a whole UTC hour, the start is not in the future,
    the end is not after the start, the window leaves the listing's, it is shorter than ``listing.min_hours``, or
    ``nodes`` is not within ``1..cluster.node_count``.

    ``vouchers`` (voucher ids of ``buyer``) pay part of the subtotal under their programs' rules
    (``vouchers.services.voucher_quote``): another organization's voucher answers 404, an ineligible one 400 on
    ``vouchers`` naming the rule.
    """
    errors: dict[str, list[str]] = {}
    if listing.status != Listing.Status.ACTIVE:
        errors["listing"] = [gettext("This listing is not open for booking.")]
    node_count, gpus_per_node = _cluster_shape(listing)
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
        errors["nodes"] = [gettext("Book at least one node.")]
    elif nodes > node_count:
        errors["nodes"] = [gettext("This cluster has only %(count)s nodes.") % {"count": node_count}]
    start = check_hour("start", start, errors)
    end = check_hour("end", end, errors)
    hours = 0
    if start is not None and end is not None:
        if start <= timezone.now():
            errors.setdefault("start", []).append(gettext("The start must be in the future."))
        if end <= start:
            errors.setdefault("end", []).append(gettext("The end must be after the start."))
        else:
            hours = int((end - start).total_seconds()) // 3600
            if hours < listing.min_hours:
                errors.setdefault("end", []).append(
                    gettext("This listing is booked for at least %(hours)s hours.") % {"hours": listing.min_hours}
                )
        if start < listing.available_from or start >= listing.available_until:
            errors.setdefault("start", []).append(
                gettext("The listing is open from %(start)s to %(end)s.")
                % {"start": local_moment(listing.available_from), "end": local_moment(listing.available_until)}
            )
        if end > listing.available_until:
            errors.setdefault("end", []).append(
                gettext("The listing is open until %(end)s.") % {"end": local_moment(listing.available_until)}
            )
    if vouchers and buyer is None:
        errors["vouchers"] = [gettext("Vouchers need a buyer organization.")]
    if errors:
        raise ApplicationError(gettext("Invalid booking request."), errors=errors)

    gpu_hours = gpus_per_node * nodes * hours
    subtotal = to_amount(listing.price_per_gpu_hour * gpu_hours)
    # The idle-capacity rule's fact, read once per booking (only when vouchers may need it).
    utilisation = (
        recent_utilisation([listing.cluster], now=timezone.now()).get(listing.cluster_id) if vouchers else None
    )
    voucher_parts = [
        {
            "voucher": part.voucher_id,
            "amount": part.amount,
            "rule": part.bound_by,
            "ratio": part.ratio,
            "explanation": part.explanation,
        }
        for part in (
            voucher_services.voucher_quote(
                buyer=buyer, listing=listing, subtotal=subtotal, voucher_ids=vouchers, cluster_utilisation=utilisation
            )
            if vouchers
            else []
        )
    ]
    voucher_amount = to_amount(sum((part["amount"] for part in voucher_parts), ZERO))
    return Quote(
        listing_id=listing.pk,
        nodes=nodes,
        start=start,
        end=end,
        hours=hours,
        gpu_hours=gpu_hours,
        price_per_gpu_hour=listing.price_per_gpu_hour,
        subtotal=subtotal,
        voucher_parts=voucher_parts,
        voucher_amount=voucher_amount,
        cash_amount=subtotal - voucher_amount,
        cluster_utilisation=utilisation,
    )


def _cluster_shape(listing: Listing) -> tuple[int, int]:
    """``(node count, GPUs per node)`` of the listing's cluster: the cluster's own when it was loaded with the
    listing, else the listing's copy of them. The database keeps that copy equal to the cluster's (the
    ``listing_search_columns`` trigger on every listing write, and a cluster's change rewrites its listings, under
    their row locks), so a listing read under its row lock carries its cluster's current shape without a join."""
    if Listing.cluster.is_cached(listing) or listing.node_count is None or listing.gpus_per_node is None:
        return listing.cluster.node_count, listing.cluster.gpus_per_node
    return listing.node_count, listing.gpus_per_node


def listing_for_quote(listing_id, *, lock: bool = False, with_cluster: bool = True) -> Listing:
    """The listing a quote or booking names; ``ApplicationError`` 400 on ``listing`` when unknown or not open.

    Listings that are not active (drafts, pending review, paused, …) answer exactly like unknown ids, so a buyer
    learns nothing about another provider's unpublished listings. ``lock=True`` (inside a transaction) takes
    ``FOR NO KEY UPDATE`` on the listing row: a provider's pause or reprice waits until the booking commits, and
    the booking sees the listing as it is once locked. ``with_cluster=False``: the cluster is not loaded with it
    (a plain booking needs only its shape, which the listing row carries: ``_cluster_shape``).
    """
    try:
        listing_id = int(listing_id)
    except (TypeError, ValueError):
        listing_id = None
    listing = (
        _open_listing(listing_id, lock=lock, with_cluster=with_cluster)
        if listing_id is not None and 0 < listing_id < 2**63
        else None
    )
    if listing is None:
        raise ApplicationError(
            gettext("Invalid booking request."), errors={"listing": [gettext("No open listing with this id.")]}
        )
    return listing


def _open_listing(listing_id: int, *, lock: bool, with_cluster: bool = True) -> Listing | None:
    """The active listing ``listing_id`` (None when there is none), with its cluster loaded when ``with_cluster``,
    ``FOR NO KEY UPDATE`` of the listing row when ``lock``."""
    # Unordered and sliced: a pk lookup needs no ORDER BY (``first()`` would add the model's ordering, compiled on
    # every booking).
    listings = Listing.objects.filter(pk=listing_id, status=Listing.Status.ACTIVE)
    if with_cluster:
        listings = listings.select_related("cluster")
    if lock:
        listings = listings.select_for_update(no_key=True, of=("self",))
    return next(iter(listings.order_by()[:1]), None)


def _take_free_nodes(booking: Booking, cluster_id: int) -> tuple[list[int], bool]:
    """Reserve the ``booking.nodes`` lowest-numbered nodes of the cluster that have no active reservation
    overlapping the booking's ``[start, end)``. Returns the free nodes' indexes (fewer than asked: nothing was
    reserved) and whether every one of them was reserved: False when a writer that skipped
    ``lock_cluster_capacity`` reserved one of them meanwhile (the caller undoes the rest and chooses again).

    One statement: the free nodes (NOT EXISTS answered by the exclusion constraint's GiST index (node, period)) and
    the INSERT of their ``NodeReservation`` rows, in node-index order, so concurrent bookings wait on each other in
    one order: no deadlock. ``ON CONFLICT DO NOTHING`` skips a row the exclusion constraint refuses instead of
    failing the statement, so the booking's transaction needs no savepoint here (``orders.sql``)."""
    chosen = sql.take_free_nodes(
        booking_id=booking.pk, cluster_id=cluster_id, start=booking.start, end=booking.end, nodes=booking.nodes
    )
    return [index for index, _ in chosen], all(taken for _, taken in chosen)


def _reserve_nodes(booking: Booking, cluster_id: int) -> list[int]:
    """Insert the booking's ``NodeReservation`` rows and return the node numbers (indexes) taken; Conflict 409
    when the cluster lacks free nodes.

    Runs inside the caller's transaction, after ``lock_cluster_capacity``, so normally the first choice holds. When
    a writer that skipped the lock committed an overlapping reservation first, the exclusion constraint skips that
    row (``_take_free_nodes``); the rows taken are deleted and the free nodes chosen again (read committed: the
    next statement sees the winner's rows). Crossing inserts of two such writers end in PostgreSQL's deadlock
    error for one of them: it propagates (it aborted the transaction) and ``retry_on_contention`` runs the whole
    booking again.
    """
    lock_cluster_capacity(cluster_id)
    for _attempt in range(NODE_CHOICE_ATTEMPTS):
        indexes, all_taken = _take_free_nodes(booking, cluster_id)
        if len(indexes) < booking.nodes:
            break
        if all_taken:
            return indexes
        NodeReservation.objects.filter(booking_id=booking.pk).delete()
    raise Conflict(
        gettext("Not enough free nodes from %(start)s to %(end)s: %(nodes)s asked. Pick another window or fewer nodes.")
        % {"start": local_moment(booking.start), "end": local_moment(booking.end), "nodes": booking.nodes},
        errors={"nodes": [gettext("Not enough free nodes in this window.")]},
        code="capacity",
    )


@dataclass(frozen=True)
class ReplacedOrder:
    """An open order (a bid) that the new booking fills and takes over, in the booking's own lock order: its
    open-order ``counter`` goes down at the counters step, and its cash hold (``hold_amount``, released under
    ``release_key``) goes back to the wallet at the ledger step, right before the booking's own cash hold."""

    counter: str
    hold_amount: Decimal
    release_key: str
    reference: str


def _hold_payment(
    booking: Booking,
    vouchers=(),
    actor=None,
    replaces: ReplacedOrder | None = None,
    cluster_utilisation: Decimal | None = None,
) -> None:
    """Hold what the booking will pay, inside the booking's transaction (lock steps 5 and 6).

    Voucher parts first (voucher → voucher hold, recomputed under the vouchers' row locks, so they may be lower
    than the quote if a concurrent booking spent the same voucher); the booking's amounts are set to what was
    actually held. Then the wallet: the replaced order's hold is released (``replaces``), and the cash part moves
    wallet → wallet hold. ``InsufficientFunds`` (409) or a voucher rule error propagates and rolls the whole
    booking back.
    """
    redemptions = voucher_services.vouchers_hold_for_booking(
        booking=booking, voucher_ids=vouchers, actor=actor, cluster_utilisation=cluster_utilisation
    )
    voucher_amount = to_amount(sum((r.amount for r in redemptions), ZERO))
    if voucher_amount != booking.voucher_amount:
        booking.voucher_amount, booking.cash_amount = voucher_amount, booking.subtotal - voucher_amount
        Booking.objects.filter(pk=booking.pk).update(
            voucher_amount=booking.voucher_amount, cash_amount=booking.cash_amount
        )
    if replaces is not None:
        ledger_services.wallet_release(
            organization_id=booking.buyer_id,
            amount=replaces.hold_amount,
            idempotency_key=replaces.release_key,
            reference=replaces.reference,
        )
    ledger_services.wallet_hold(
        organization_id=booking.buyer_id,
        amount=booking.cash_amount,
        idempotency_key=f"booking:{booking.pk}:hold",
        reference=f"booking:{booking.pk}",
    )


def _release_payment(booking: Booking) -> None:
    """Give back everything ``_hold_payment`` held, in full: voucher parts and the cash part."""
    voucher_services.redemptions_release(booking=booking)
    ledger_services.wallet_release(
        organization_id=booking.buyer_id,
        amount=booking.cash_amount,
        idempotency_key=f"booking:{booking.pk}:release",
        reference=f"booking:{booking.pk}",
    )


def _record(booking: Booking, *, from_status: str, actor, ip=None, note: str = "", data: dict | None = None):
    """The status change row and the booking's audit event."""
    BookingStatusChange.objects.create(
        booking=booking,
        from_status=from_status,
        to_status=booking.status,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        note=note,
    )
    _audit(booking, from_status=from_status, actor=actor, ip=ip, data=data)


def _audit(booking: Booking, *, from_status: str, actor, ip=None, data: dict | None = None):
    audit_record(
        action=f"booking.{booking.status}",
        obj=booking,
        actor=actor,
        organization_id=booking.buyer_id,
        ip=ip,
        data={
            "from": from_status,
            "to": booking.status,
            "cash_amount": str(booking.cash_amount),
            "voucher_amount": str(booking.voucher_amount),
            **(data or {}),
        },
    )


@retry_on_contention
def booking_create(
    *,
    buyer,
    listing_id,
    nodes,
    start,
    end,
    created_by=None,
    vouchers=(),
    confirm: bool = False,
    ip: str | None = None,
    replaces: ReplacedOrder | None = None,
    savepoint: bool = True,
) -> Booking:
    """Book ``nodes`` whole nodes of listing ``listing_id`` for ``[start, end)`` for organization ``buyer``.

    One transaction, in the lock order: the listing row is locked (it cannot be paused or repriced meanwhile), the
    quote is validated, the lowest-numbered free nodes are reserved (cluster capacity), the held-bookings counter
    goes up (and ``replaces``' counter down), the voucher parts and the cash part are held in the ledger, and the
    audit event is recorded (a plain INSERT: no lock). The booking is ``held`` until ``now + HOLD_MINUTES`` or,
    with ``confirm=True``, ``confirmed`` at once. ``replaces``: the bid this booking fills
    (``orders.bid_services.bid_match``), whose counter and hold are given back in their steps. Run again on a
    deadlock or serialization failure when it owns the transaction (``marketplace.core.locks``); ``Busy`` (409) when
    contention persists.

    Raises ``ApplicationError`` 400 (field errors, see ``quote_compute``; unknown or unopened listing on
    ``listing``), ``Conflict`` 409 when the cluster has too few free nodes in the window, and
    ``ledger.services.InsufficientFunds`` (409) when the wallet cannot cover the cash part. Nothing is written when
    it raises.

    Inside a caller's transaction the booking is a savepoint, so the caller may catch an error and carry on.
    ``savepoint=False`` is for a caller whose whole transaction rolls back whenever this raises (the idempotent
    API request): no savepoint, two round trips fewer, and the caller's transaction is unusable after an error.
    """
    with transaction.atomic(savepoint=savepoint):
        # Vouchers' rules read the cluster; a plain booking needs only its shape, which the listing row carries.
        listing = listing_for_quote(listing_id, lock=True, with_cluster=bool(vouchers))
        quote = quote_compute(listing=listing, nodes=nodes, start=start, end=end, buyer=buyer, vouchers=vouchers)
        now = timezone.now()
        status = BookingStatus.CONFIRMED if confirm else BookingStatus.HELD
        booking = Booking(
            buyer=buyer,
            listing=listing,
            created_by=created_by,
            nodes=quote.nodes,
            start=quote.start,
            end=quote.end,
            gpu_hours=quote.gpu_hours,
            price_per_gpu_hour=quote.price_per_gpu_hour,
            subtotal=quote.subtotal,
            voucher_amount=quote.voucher_amount,
            cash_amount=quote.cash_amount,
            status=status,
            hold_expires_at=None if confirm else now + dt.timedelta(minutes=settings.HOLD_MINUTES),
        )
        _insert_created(booking, actor=created_by)
        booking.reserved_nodes = _reserve_nodes(booking, listing.cluster_id)
        if not confirm:
            limits.open_order_count(organization_id=buyer.pk, counter=limits.HELD_BOOKINGS, delta=1)
        if replaces is not None:
            limits.open_order_count(organization_id=buyer.pk, counter=replaces.counter, delta=-1)
        _hold_payment(
            booking, vouchers, actor=created_by, replaces=replaces, cluster_utilisation=quote.cluster_utilisation
        )
        data = {
            "listing": listing.pk,
            "nodes": quote.nodes,
            "node_indexes": booking.reserved_nodes,
            "start": quote.start.isoformat(),
            "end": quote.end.isoformat(),
        }
        _audit(booking, from_status="", actor=created_by, ip=ip, data=data)
    return booking


def _insert_created(booking: Booking, *, actor) -> None:
    """INSERT the new ``booking`` and its first ``BookingStatusChange`` ("" → its status)."""
    booking.save(force_insert=True)
    BookingStatusChange.objects.create(
        booking=booking,
        from_status="",
        to_status=booking.status,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )


@retry_on_contention
def _transition(booking: Booking | int, *, to: str, actor=None, ip=None, note: str = "", check=None) -> Booking:
    """Move a booking to status ``to`` if ``Booking.TRANSITIONS`` permits it; the one writer of ``status``.

    Locks the booking row (``FOR UPDATE OF`` the booking only), runs ``check(locked_booking)`` (which raises to
    refuse), then updates conditionally on the status it read, writes a ``BookingStatusChange`` and an audit event.
    Leaving ``held``/``confirmed`` for ``cancelled``/``expired`` deactivates the reservations and releases the
    payment in full, in the same transaction. In the lock order: booking row → its reservations (capacity) → the
    held-bookings counter → vouchers → ledger accounts; the audit event is a plain INSERT that takes no lock (the
    audit sequencer appends it to the log after the commit). Raises ``NotFound`` for an unknown booking and
    ``Conflict`` 409 when the transition is not allowed from the current status; run again on contention when it
    owns the transaction, ``Busy`` (409) when that persists.
    """
    pk = booking.pk if isinstance(booking, Booking) else booking
    with transaction.atomic():
        locked = Booking.objects.select_for_update(of=("self",)).filter(pk=pk).first()
        if locked is None:
            raise NotFound(gettext("No such booking."))
        if locked.can_become(to) and check is not None:
            check(locked)
        from_status = advance(locked, to, **({"hold_expires_at": None} if locked.status == BookingStatus.HELD else {}))
        releases = to in (BookingStatus.CANCELLED, BookingStatus.EXPIRED)
        if releases:
            NodeReservation.objects.filter(booking_id=pk, active=True).update(active=False)
        if from_status == BookingStatus.HELD:
            limits.open_order_count(organization_id=locked.buyer_id, counter=limits.HELD_BOOKINGS, delta=-1)
        if releases:
            _release_payment(locked)
        _record(locked, from_status=from_status, actor=actor, ip=ip, note=note)
    if isinstance(booking, Booking):
        booking.refresh_from_db()
        return booking
    return locked


def _before_start(booking: Booking) -> None:
    if timezone.now() >= booking.start:
        raise Conflict(gettext("The booking has started; it can no longer be cancelled."), code="started")


def _not_resold(booking: Booking) -> None:
    """Time that was sold on resale, or bought on resale, has no refund: the booking can no longer be cancelled
    (checked under the booking's row lock, which ``orders.resale_services.resale_buy`` takes too)."""
    if ResaleSale.objects.filter(models.Q(seller_booking_id=booking.pk) | models.Q(booking_id=booking.pk)).exists():
        raise Conflict(
            gettext("Part of this booking was resold or bought on resale; it can no longer be cancelled."),
            code="resold",
        )


def _cancellable(booking: Booking) -> None:
    _before_start(booking)
    _not_resold(booking)


def _hold_not_lapsed(booking: Booking) -> None:
    if booking.hold_expires_at is not None and timezone.now() >= booking.hold_expires_at:
        raise Conflict(gettext("The hold has expired; book again."), code="hold_expired")


def booking_confirm(*, booking: Booking | int, actor=None, ip=None) -> Booking:
    """``held`` → ``confirmed`` while the hold has not lapsed. Conflict 409 otherwise."""
    return _transition(booking, to=BookingStatus.CONFIRMED, actor=actor, ip=ip, check=_hold_not_lapsed)


def booking_cancel(*, booking: Booking | int, actor=None, ip=None, note: str = "") -> Booking:
    """``held|confirmed`` → ``cancelled`` before the start: nodes freed, payment released in full. Conflict 409
    otherwise (wrong status, already started, or resale time sold from it or bought into it)."""
    return _transition(booking, to=BookingStatus.CANCELLED, actor=actor, ip=ip, note=note, check=_cancellable)


def _hold_lapsed(booking: Booking) -> None:
    if booking.hold_expires_at is None or timezone.now() < booking.hold_expires_at:
        raise Conflict(gettext("The hold has not expired yet."), code="hold_not_expired")


def booking_expire(*, booking: Booking | int) -> Booking:
    """``held`` past ``hold_expires_at`` → ``expired``: nodes freed, payment released. For the settlement sweep,
    which may call it inside its own transaction after ``SELECT … FOR UPDATE SKIP LOCKED``. Conflict 409 when the
    booking is not held or its hold has not lapsed."""
    return _transition(booking, to=BookingStatus.EXPIRED, note="hold expired", check=_hold_lapsed)


def _started(booking: Booking) -> None:
    if timezone.now() < booking.start:
        raise Conflict(gettext("The booking has not started yet."), code="not_started")


def _ended(booking: Booking) -> None:
    if timezone.now() < booking.end:
        raise Conflict(gettext("The booking has not ended yet."), code="not_ended")


def booking_activate(*, booking: Booking | int) -> Booking:
    """``confirmed`` → ``active`` once the start is reached (settlement sweep). Conflict 409 otherwise."""
    return _transition(booking, to=BookingStatus.ACTIVE, note="start reached", check=_started)


def booking_complete(*, booking: Booking | int) -> Booking:
    """``active`` → ``completed`` once the end is reached (settlement sweep). Conflict 409 otherwise."""
    return _transition(booking, to=BookingStatus.COMPLETED, note="end reached", check=_ended)


def bookings_mark_settled(*, booking_ids, actor=None, note: str = "settled") -> list[int]:
    """``completed`` → ``settled`` for many bookings at once, for settlement batches. Returns the ids moved, in pk
    order; ids not ``completed`` are left as they are.

    Call inside the settling transaction holding the bookings' row locks (``SELECT … FOR UPDATE``). One conditional
    UPDATE (``advance_many``: a booking moves once whatever the retries), then, as ``_transition``
    writes for each change, one ``BookingStatusChange`` per booking moved (one INSERT) and one ``booking.settled``
    audit event each (one INSERT).
    """
    ids = sorted({int(pk) for pk in booking_ids})
    if not ids:
        return []
    with transaction.atomic(savepoint=False):  # the caller's savepoint suffices
        settled = set(advance_many(Booking, ids, BookingStatus.COMPLETED, BookingStatus.SETTLED))
        moved = list(
            Booking.objects.filter(pk__in=settled)
            .order_by("pk")
            .values_list("pk", "buyer_id", "cash_amount", "voucher_amount")
        )
        user = actor if getattr(actor, "is_authenticated", False) else None
        BookingStatusChange.objects.bulk_create(
            BookingStatusChange(
                booking_id=pk,
                from_status=BookingStatus.COMPLETED,
                to_status=BookingStatus.SETTLED,
                actor=user,
                note=note,
            )
            for pk, *_ in moved
        )
        audit_record_many(
            audit_event(
                action=f"booking.{BookingStatus.SETTLED}",
                object_type=Booking._meta.label_lower,
                object_id=str(pk),
                actor=actor,
                organization_id=buyer_id,
                data={
                    "from": BookingStatus.COMPLETED,
                    "to": BookingStatus.SETTLED,
                    "cash_amount": str(cash),
                    "voucher_amount": str(voucher),
                },
            )
            for pk, buyer_id, cash, voucher in moved
        )
    return [pk for pk, *_ in moved]
