"""Writes for the resale of booked time (issue 21): resale asks, their purchase, withdrawal and the start sweep.

The buyer of a confirmed (or running) booking offers some of its nodes for a later part of its window (to its end) at
its own price (``resale_ask_create``). A purchase (``resale_buy``) is ONE transaction, in the lock order of
``marketplace.core.locks``:

1. the seller's booking row (``FOR UPDATE``: the row the purchase is about; ``booking_cancel`` takes the same lock,
   so a purchase and a cancellation of the booking run one after the other), then the ask row;
3. cluster capacity (``lock_cluster_capacity``), then the seller's ``NodeReservation`` rows: each bought node's row
   is deactivated and replaced by the buyer's row for the bought window and the seller's rows for what is left
   before and after it (the exclusion constraint still guards every active row);
4. (a bid's purchase only, ``replaces``) the open-bids counter of the buyer;
5. the seller booking's vouchers, by id (``FOR UPDATE``: an expiry sweep cannot end one meanwhile);
6. the ledger: one ``ledger_post_many`` (entries in account-id order) of two postings — first
   ``RESALE_VOUCHER_RETURN``: the voucher-funded share of the resold part, from the buyer's wallet back to each
   voucher (to its program budget once the voucher has ended), so no subsidy becomes cash; then ``RESALE``: the
   rest from the buyer's wallet to the seller's wallet less the platform fee;
audit events last (plain INSERTs). ``orders.signals.resale_above_price`` is sent after the commit when voucher-paid
time was resold above the price paid for it.

The buyer's new booking is ``confirmed`` with zero amounts (it was paid here, not through settlement: the provider
is paid by the original booking's settlement, in full). A booking that sold resale time, and a booking bought on
resale, can no longer be cancelled (``orders.services.booking_cancel`` refuses): the time was sold, there is
nothing to refund. Resold time can be resold again (the buyer's booking gets asks of its own).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext
from psycopg.types.range import Range

from audit.services import audit_event, audit_record, audit_record_many
from ledger.models import JournalTransaction, LedgerAccount
from ledger.services import Posting, accounts_for_many, ledger_post_many
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.locks import lock_cluster_capacity, retry_on_contention
from marketplace.core.money import PRICE_QUANTUM, ZERO, to_amount
from marketplace.core.pipeline import advance, advance_many
from orders import limits
from orders.models import Booking, BookingStatusChange, NodeReservation, ResaleAsk, ResaleSale
from orders.services import ReplacedOrder, check_hour
from orders.signals import resale_above_price, resale_ask_opened
from vouchers.models import Redemption, Voucher

BookingStatus = Booking.Status
AskStatus = ResaleAsk.Status
AccountKind = LedgerAccount.Kind

# Bookings whose time may be resold: confirmed (not started) or active (running: its later part).
RESELLABLE = (BookingStatus.CONFIRMED, BookingStatus.ACTIVE)
MAX_PRICE = Decimal("100000")  # per GPU-hour: far above any real price, well inside the price column
SWEEP_BATCH = 500


def _hours(start: dt.datetime, end: dt.datetime) -> int:
    return int((end - start).total_seconds()) // 3600


def _node_hours(nodes: int, start: dt.datetime, end: dt.datetime) -> int:
    return nodes * _hours(start, end)


def _count(name: str, value, errors: dict[str, list[str]], message: str) -> int | None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        errors.setdefault(name, []).append(message)
        return None
    return value


def _window(start, end, errors: dict[str, list[str]]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Whole UTC hours, start in the future, end after start (field errors otherwise)."""
    start = check_hour("start", start, errors)
    end = check_hour("end", end, errors)
    if start is not None and start <= timezone.now():
        errors.setdefault("start", []).append(gettext("The start must be in the future."))
    if start is not None and end is not None and end <= start:
        errors.setdefault("end", []).append(gettext("The end must be after the start."))
    return start, end


def _price(value, errors: dict[str, list[str]]) -> Decimal | None:
    try:
        price = Decimal(value) if not isinstance(value, float) else None
    except (InvalidOperation, TypeError, ValueError):
        price = None
    if price is None or not price.is_finite():
        errors.setdefault("price_per_gpu_hour", []).append(gettext("Give a price."))
        return None
    if price <= ZERO:
        errors.setdefault("price_per_gpu_hour", []).append(gettext("The price must be more than zero."))
        return None
    if price > MAX_PRICE:
        errors.setdefault("price_per_gpu_hour", []).append(
            gettext("The price may be at most %(max)s per GPU-hour.") % {"max": MAX_PRICE}
        )
        return None
    if price != price.quantize(PRICE_QUANTUM):
        errors.setdefault("price_per_gpu_hour", []).append(gettext("Give at most 4 decimal places."))
        return None
    return price


def _covering(booking_id: int, start: dt.datetime, end: dt.datetime):
    """The booking's active reservations that cover all of ``[start, end)``, lowest node first."""
    return (
        NodeReservation.objects.filter(booking_id=booking_id, active=True, period__contains=Range(start, end, "[)"))
        .select_related("node")
        .order_by("node__index")
    )


def voucher_floor(booking: Booking) -> Decimal:
    """The least price per GPU-hour at which the booking's time may be resold: its voucher-funded share per GPU-hour
    (rounded up to 4 places), so every sale covers what it returns to the vouchers; 0 without vouchers."""
    if not booking.voucher_amount or not booking.gpu_hours:
        return ZERO
    return (booking.voucher_amount / booking.gpu_hours).quantize(PRICE_QUANTUM, rounding=ROUND_CEILING)


def resellable_nodes(booking: Booking, start: dt.datetime, end: dt.datetime) -> int:
    """Nodes of ``booking`` it could still offer for ``[start, end)``: those it holds for the whole window, less
    the nodes left in its open asks overlapping the window."""
    held = _covering(booking.pk, start, end).count()
    offered = sum(
        ResaleAsk.objects.filter(booking_id=booking.pk, status=AskStatus.OPEN, start__lt=end, end__gt=start)
        .values_list("nodes_left", flat=True)
        .iterator()
    )
    return max(held - offered, 0)


def _lock_own_booking(booking_id, seller) -> Booking:
    try:
        booking_id = int(booking_id)
    except (TypeError, ValueError):
        booking_id = 0
    locked = (
        Booking.objects.select_for_update(of=("self",))
        .select_related("listing__cluster")
        .filter(pk=booking_id, buyer=seller)
        .first()
        if 0 < booking_id < 2**63
        else None
    )
    if locked is None:
        raise NotFound(gettext("No such booking."))
    return locked


@retry_on_contention
def resale_ask_create(
    *, booking_id, seller, nodes, start, end, price_per_gpu_hour, created_by=None, ip: str | None = None
) -> ResaleAsk:
    """Offer ``nodes`` of ``seller``'s booking ``booking_id`` for ``[start, end)`` at ``price_per_gpu_hour``.

    Locks the booking row (a cancellation waits). Raises ``NotFound`` for another organization's booking,
    ``Conflict`` 409 when the booking is neither confirmed nor running, and ``ApplicationError`` 400 with field
    errors when ``nodes`` is not a positive count the booking still holds for the whole window (less its open
    asks), the window is not whole future hours inside the booking's, or the price is not positive, has more than
    4 places, is absurdly high or is below the voucher-funded share per GPU-hour (``voucher_floor``). Nothing is
    written when it raises.
    """
    errors: dict[str, list[str]] = {}
    nodes = _count("nodes", nodes, errors, gettext("Offer at least one node."))
    start, end = _window(start, end, errors)
    price = _price(price_per_gpu_hour, errors)
    with transaction.atomic():
        booking = _lock_own_booking(booking_id, seller)
        if booking.status not in RESELLABLE:
            raise Conflict(
                gettext("Only a confirmed or running booking can be resold."),
                errors={"booking": [gettext("Not confirmed or running.")]},
                code="not_resellable",
            )
        if start is not None and end is not None and end > start:
            if start < booking.start or end > booking.end:
                errors.setdefault("end" if start >= booking.start else "start", []).append(
                    gettext("The window must lie inside the booking's.")
                )
            elif end != booking.end:
                # Resold time is the rest of the booking: the seller then never regains a node after a buyer's
                # time on it, so the node's access is handed over once, seller to buyer (``orders.handovers``).
                errors.setdefault("end", []).append(gettext("Resold time runs to the end of the booking."))
            elif nodes is not None:
                free = resellable_nodes(booking, start, end)
                if nodes > free:
                    errors.setdefault("nodes", []).append(
                        gettext("You can offer at most %(count)s nodes for this window.") % {"count": free}
                    )
        floor = voucher_floor(booking)
        if price is not None and price < floor:
            errors.setdefault("price_per_gpu_hour", []).append(
                gettext("The price must cover the voucher-funded share: at least %(floor)s per GPU-hour.")
                % {"floor": floor}
            )
        if errors:
            raise ApplicationError(gettext("Invalid resale request."), errors=errors)
        ask = ResaleAsk.objects.create(
            booking=booking,
            seller=seller,
            listing_id=booking.listing_id,
            created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
            nodes=nodes,
            nodes_left=nodes,
            start=start,
            end=end,
            price_per_gpu_hour=price,
        )
        audit_record(
            action="resale.ask_created",
            obj=ask,
            actor=created_by,
            organization_id=seller.pk,
            ip=ip,
            data={
                "booking": booking.pk,
                "nodes": nodes,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "price_per_gpu_hour": str(price),
            },
        )
        # Open bids get their chance at the new ask once it is committed (``orders.resale_tasks``, as for a
        # listing going active): a signal, since services never import tasks.
        ask_id = ask.pk
        transaction.on_commit(lambda: resale_ask_opened.send(sender=ResaleAsk, ask_id=ask_id), robust=True)
    return ask


@retry_on_contention
def resale_ask_withdraw(*, ask: ResaleAsk | int, seller, actor=None, ip: str | None = None) -> ResaleAsk:
    """``open`` → ``withdrawn`` by the seller. ``NotFound`` for another organization's ask, ``Conflict`` 409 when
    it is no longer open."""
    pk = ask.pk if isinstance(ask, ResaleAsk) else ask
    with transaction.atomic():
        locked = ResaleAsk.objects.select_for_update(of=("self",)).filter(pk=pk, seller=seller).first()
        if locked is None:
            raise NotFound(gettext("No such resale ask."))
        advance(locked, AskStatus.WITHDRAWN, withdrawn_note="seller")
        audit_record(action="resale.ask_withdrawn", obj=locked, actor=actor, organization_id=seller.pk, ip=ip, data={})
    return locked


def resale_asks_sweep(*, now: dt.datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """Withdraw the open asks whose window has started, or whose booking can no longer be resold (cancelled,
    completed, …): ``SELECT … FOR UPDATE SKIP LOCKED`` in batches, one conditional UPDATE per batch; a no-op the
    second time. Returns how many were withdrawn."""
    now = now or timezone.now()
    done = 0
    stale = Q(start__lte=now) | ~Q(booking__status__in=RESELLABLE)
    while True:
        with transaction.atomic():
            ids = list(
                ResaleAsk.objects.select_for_update(of=("self",), skip_locked=True)
                .filter(stale, status=AskStatus.OPEN)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            if not ids:
                return done
            moved = advance_many(ResaleAsk, ids, AskStatus.OPEN, AskStatus.WITHDRAWN, withdrawn_note="window started")
            rows = ResaleAsk.objects.filter(pk__in=moved).values_list("pk", "seller_id")
            audit_record_many(
                audit_event(
                    action="resale.ask_withdrawn",
                    object_type=ResaleAsk._meta.label_lower,
                    object_id=str(pk),
                    organization_id=seller_id,
                    data={"reason": "window started or booking closed"},
                )
                for pk, seller_id in rows
            )
            done += len(moved)
        if len(ids) < batch:
            return done


# --- purchase ------------------------------------------------------------------------------------------------------


def _open_ask(ask_id) -> ResaleAsk:
    try:
        ask_id = int(ask_id)
    except (TypeError, ValueError):
        ask_id = 0
    ask = ResaleAsk.objects.filter(pk=ask_id, status=AskStatus.OPEN).first() if 0 < ask_id < 2**63 else None
    if ask is None:
        raise NotFound(gettext("No open resale ask with this id."))
    return ask


def _voucher_returns(seller_booking: Booking, sold_node_hours: int, now) -> tuple[dict[int, Decimal], list]:
    """What this sale returns to each voucher of ``seller_booking`` (``{voucher id: amount}``, amounts > 0) and the
    vouchers, locked ``FOR UPDATE`` in id order (lock step 5).

    Cumulative, so rounding never over- or under-returns across many sales: after this sale each voucher has got
    back its part × (node-hours sold so far ÷ the booking's node-hours), rounded half-up once."""
    parts = dict(
        Redemption.objects.filter(
            booking_id=seller_booking.pk, status__in=[Redemption.Status.HELD, Redemption.Status.CAPTURED]
        ).values_list("voucher_id", "amount")
    )
    if not parts:
        return {}, []
    vouchers = list(Voucher.objects.select_for_update(of=("self",)).filter(pk__in=parts).order_by("pk"))
    total = _node_hours(seller_booking.nodes, seller_booking.start, seller_booking.end)
    sold_before, returned_before = 0, dict.fromkeys(parts, ZERO)
    for sale in ResaleSale.objects.filter(seller_booking_id=seller_booking.pk):
        sold_before += _node_hours(sale.nodes, sale.start, sale.end)
        for voucher_id, amount in sale.voucher_returns.items():
            returned_before[int(voucher_id)] = returned_before.get(int(voucher_id), ZERO) + Decimal(amount)
    returns = {}
    for voucher_id, part in sorted(parts.items()):
        target = to_amount(part * (sold_before + sold_node_hours) / total)
        amount = min(target, part) - returned_before.get(voucher_id, ZERO)
        if amount > ZERO:
            returns[voucher_id] = amount
    return returns, vouchers


def _trim(returns: dict[int, Decimal], cap: Decimal) -> dict[int, Decimal]:
    """Cut ``returns`` down to ``cap`` in all (a cent of rounding at most, given ``voucher_floor``)."""
    excess = sum(returns.values(), ZERO) - cap
    trimmed = dict(returns)
    for voucher_id in sorted(trimmed, key=lambda v: -trimmed[v]):
        if excess <= ZERO:
            break
        cut = min(excess, trimmed[voucher_id])
        trimmed[voucher_id] -= cut
        excess -= cut
    return {v: a for v, a in trimmed.items() if a > ZERO}


def _split(reservations: list[NodeReservation], buyer_booking: Booking, start, end) -> None:
    """Move each bought node's ``[start, end)`` to ``buyer_booking``: the seller's row is deactivated, then the
    buyer's row and the seller's remainders before and after are inserted (the exclusion constraint checks them)."""
    NodeReservation.objects.filter(pk__in=[r.pk for r in reservations]).update(active=False)
    rows = []
    for r in reservations:
        lower, upper = r.period.lower, r.period.upper
        if lower < start:
            rows.append(NodeReservation(booking_id=r.booking_id, node_id=r.node_id, period=Range(lower, start, "[)")))
        rows.append(NodeReservation(booking=buyer_booking, node_id=r.node_id, period=Range(start, end, "[)")))
        if end < upper:
            rows.append(NodeReservation(booking_id=r.booking_id, node_id=r.node_id, period=Range(end, upper, "[)")))
    NodeReservation.objects.bulk_create(rows)


def _origin(booking: Booking) -> Booking:
    """The first booking of a chain of resales (the one paid to the provider)."""
    seen = set()
    while booking.pk not in seen:
        seen.add(booking.pk)
        sale = ResaleSale.objects.filter(booking_id=booking.pk).select_related("seller_booking").first()
        if sale is None:
            return booking
        booking = sale.seller_booking
    return booking


def platform_fee(amount: Decimal) -> Decimal:
    return to_amount(amount * settings.PLATFORM_FEE_BPS / Decimal(10000))


@retry_on_contention
def resale_buy(
    *,
    ask_id,
    buyer,
    nodes,
    start,
    end,
    created_by=None,
    ip: str | None = None,
    replaces: ReplacedOrder | None = None,
) -> ResaleSale:
    """Buy ``nodes`` nodes of resale ask ``ask_id`` for ``[start, end)`` (inside the ask's window) for ``buyer``.

    One transaction in the lock order (see the module docstring): the seller's booking and the ask are locked, the
    nodes' reservations split, the buyer's ``confirmed`` booking created, the voucher share returned and the seller
    paid from the buyer's wallet, the ask's ``nodes_left`` counted down (``sold`` at 0), audit events last.

    Raises ``NotFound`` for an unknown or closed ask id, ``ApplicationError`` 400 with field errors (``nodes`` not a
    positive count within the ask's nodes, a window not of whole future hours inside the ask's, the seller's own
    ask), ``Conflict`` 409 when fewer nodes are left than asked, the ask closed meanwhile or its booking can no
    longer be resold, and ``InsufficientFunds`` (409) when the buyer's wallet cannot pay. Nothing is written when
    it raises; run again on contention, ``Busy`` (409) when that persists.

    ``replaces``: the bid this purchase fills (``orders.bid_services.bid_match_resale``, whose transaction this
    joins after locking the bid): its open-bids counter goes down at the counters step (after cluster capacity,
    before the vouchers) and its hold goes back to the wallet in the ledger step, as the first posting of the same
    ``ledger_post_many`` that pays for the purchase — so the lock order stays the one above, and the payment may
    use the released hold.
    """
    ask = _open_ask(ask_id)
    errors: dict[str, list[str]] = {}
    nodes = _count("nodes", nodes, errors, gettext("Buy at least one node."))
    start, end = _window(start, end, errors)
    if nodes is not None and nodes > ask.nodes:
        errors.setdefault("nodes", []).append(gettext("This ask offers only %(count)s nodes.") % {"count": ask.nodes})
    if start is not None and end is not None and end > start and (start < ask.start or end > ask.end):
        errors.setdefault("end" if start >= ask.start else "start", []).append(
            gettext("The window must lie inside the ask's.")
        )
    elif end is not None and end != ask.end:
        errors.setdefault("end", []).append(gettext("Resold time runs to the end of the ask."))
    if ask.seller_id == buyer.pk:
        errors.setdefault("ask", []).append(gettext("You cannot buy your own resale ask."))
    if errors:
        raise ApplicationError(gettext("Invalid resale purchase."), errors=errors)

    with transaction.atomic():
        seller_booking = (
            Booking.objects.select_for_update(of=("self",)).select_related("listing__cluster").get(pk=ask.booking_id)
        )
        ask = ResaleAsk.objects.select_for_update(of=("self",)).get(pk=ask.pk)
        if ask.status != AskStatus.OPEN:
            raise Conflict(gettext("This resale ask is no longer open."), code="ask_closed")
        if seller_booking.status not in RESELLABLE:
            raise Conflict(gettext("The booking offered is no longer open for resale."), code="not_resellable")
        if nodes > ask.nodes_left:
            raise Conflict(
                gettext("Only %(count)s nodes of this ask are left.") % {"count": ask.nodes_left},
                errors={"nodes": [gettext("Not enough nodes left.")]},
                code="capacity",
            )
        cluster = seller_booking.listing.cluster
        lock_cluster_capacity(cluster.pk)
        reservations = list(_covering(seller_booking.pk, start, end)[:nodes])
        if len(reservations) < nodes:
            raise Conflict(
                gettext("The seller no longer holds that many nodes for this window."),
                errors={"nodes": [gettext("Not enough nodes left.")]},
                code="capacity",
            )
        now = timezone.now()
        gpu_hours = cluster.gpus_per_node * nodes * _hours(start, end)
        amount = to_amount(ask.price_per_gpu_hour * gpu_hours)
        buyer_booking = Booking.objects.create(
            buyer=buyer,
            listing_id=seller_booking.listing_id,
            created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
            nodes=nodes,
            start=start,
            end=end,
            gpu_hours=gpu_hours,
            price_per_gpu_hour=ask.price_per_gpu_hour,
            subtotal=ZERO,
            voucher_amount=ZERO,
            cash_amount=ZERO,
            status=BookingStatus.CONFIRMED,
        )
        BookingStatusChange.objects.create(
            booking=buyer_booking,
            from_status="",
            to_status=BookingStatus.CONFIRMED,
            actor=buyer_booking.created_by,
            note=f"resale ask {ask.pk}",
        )
        _split(reservations, buyer_booking, start, end)
        if replaces is not None:
            limits.open_order_count(organization_id=buyer.pk, counter=replaces.counter, delta=-1)
        returns, vouchers = _voucher_returns(seller_booking, _node_hours(nodes, start, end), now)
        returns = _trim(returns, amount)
        voucher_return = sum(returns.values(), ZERO)
        fee = min(platform_fee(amount), amount - voucher_return)
        seller_amount = amount - voucher_return - fee
        sale = ResaleSale.objects.create(
            ask=ask,
            seller_booking=seller_booking,
            booking=buyer_booking,
            buyer=buyer,
            nodes=nodes,
            start=start,
            end=end,
            gpu_hours=gpu_hours,
            price_per_gpu_hour=ask.price_per_gpu_hour,
            amount=amount,
            voucher_return=voucher_return,
            voucher_returns={str(v): str(a) for v, a in returns.items()},
            fee=fee,
            seller_amount=seller_amount,
        )
        if ask.nodes_left == nodes:
            advance(ask, AskStatus.SOLD, nodes_left=0)
        else:
            ResaleAsk.objects.filter(pk=ask.pk).update(nodes_left=F("nodes_left") - nodes, updated_at=now)
            ask.nodes_left -= nodes
        _post_payment(sale, seller_booking, vouchers, returns, now, replaces=replaces)
        _audit_sale(sale, ask, seller_booking, actor=created_by, ip=ip)
        origin = _origin(seller_booking)
        if origin.voucher_amount > ZERO and ask.price_per_gpu_hour > origin.price_per_gpu_hour:
            transaction.on_commit(
                lambda: resale_above_price.send(
                    sender=ResaleSale, sale_id=sale.pk, origin_booking_id=origin.pk, booking_id=buyer_booking.pk
                )
            )
    sale.booking = buyer_booking
    return sale


def _post_payment(
    sale: ResaleSale,
    seller_booking: Booking,
    vouchers: list[Voucher],
    returns,
    now,
    *,
    replaces: ReplacedOrder | None = None,
) -> None:
    """The ledger step: the replaced bid's hold released (``replaces``), the voucher return, then the payment to
    the seller and the fee (one ``ledger_post_many``: all entries in account-id order, and per account in posting
    order, so the release reaches the buyer's wallet before the payments leave it)."""
    by_id = {v.pk: v for v in vouchers}

    def destination(voucher_id: int) -> tuple[str, int]:
        voucher = by_id[voucher_id]
        if voucher.status == Voucher.Status.ACTIVE and voucher.expires_at > now:
            return AccountKind.VOUCHER, voucher.pk
        return AccountKind.PROGRAM_BUDGET, voucher.program_id

    keys = [
        (AccountKind.WALLET, sale.buyer_id),
        (AccountKind.WALLET, seller_booking.buyer_id),
        (AccountKind.PLATFORM_FEES, None),
        *(destination(v) for v in returns),
    ]
    if replaces is not None and replaces.hold_amount > ZERO:
        keys.append((AccountKind.WALLET_HOLD, sale.buyer_id))
    accounts = accounts_for_many(keys)
    buyer_wallet = accounts[(AccountKind.WALLET, sale.buyer_id)]
    postings = []
    if replaces is not None and replaces.hold_amount > ZERO:
        postings.append(
            Posting(
                kind=JournalTransaction.Kind.RELEASE,
                idempotency_key=replaces.release_key,
                legs=[
                    (accounts[(AccountKind.WALLET_HOLD, sale.buyer_id)], -replaces.hold_amount),
                    (buyer_wallet, replaces.hold_amount),
                ],
                reference=replaces.reference,
            )
        )
    if sale.voucher_return > ZERO:
        legs = [(buyer_wallet, -sale.voucher_return)]
        legs += [(accounts[destination(v)], amount) for v, amount in sorted(returns.items())]
        postings.append(
            Posting(
                kind=JournalTransaction.Kind.RESALE_VOUCHER_RETURN,
                idempotency_key=f"resale-sale:{sale.pk}:voucher-return",
                legs=legs,
                reference=f"booking:{seller_booking.pk}",
                memo=f"voucher share of resale {sale.pk}",
            )
        )
    cash = sale.amount - sale.voucher_return
    if cash > ZERO:
        postings.append(
            Posting(
                kind=JournalTransaction.Kind.RESALE,
                idempotency_key=f"resale-sale:{sale.pk}",
                legs=[
                    (buyer_wallet, -cash),
                    (accounts[(AccountKind.WALLET, seller_booking.buyer_id)], sale.seller_amount),
                    (accounts[(AccountKind.PLATFORM_FEES, None)], sale.fee),
                ],
                reference=f"booking:{sale.booking_id}",
                memo=f"resale {sale.pk} of booking {seller_booking.pk}",
            )
        )
    ledger_post_many(postings)


def _audit_sale(sale: ResaleSale, ask: ResaleAsk, seller_booking: Booking, *, actor, ip) -> None:
    window = {"start": sale.start.isoformat(), "end": sale.end.isoformat()}
    audit_record_many(
        [
            audit_event(
                action=f"booking.{BookingStatus.CONFIRMED}",
                obj=sale.booking,
                actor=actor,
                organization_id=sale.buyer_id,
                ip=ip,
                data={"from": "", "to": BookingStatus.CONFIRMED, "resale_ask": ask.pk, "nodes": sale.nodes, **window},
            ),
            audit_event(
                action="resale.sold",
                obj=ask,
                actor=actor,
                organization_id=seller_booking.buyer_id,
                ip=ip,
                data={
                    "sale": sale.pk,
                    "seller_booking": seller_booking.pk,
                    "buyer_booking": sale.booking_id,
                    "nodes": sale.nodes,
                    **window,
                    "amount": str(sale.amount),
                    "voucher_return": str(sale.voucher_return),
                    "voucher_returns": sale.voucher_returns,
                    "fee": str(sale.fee),
                    "seller_amount": str(sale.seller_amount),
                },
            ),
        ]
    )
