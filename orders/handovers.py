"""Delivery of a booking (issue 20): access handovers to the provider's agent, the buyer's connection instructions,
incidents (from the nodes' outages, or reported by the buyer) and delivered node-hours.

Handovers. When a booking has started (``confirmed`` or ``active``, start reached, end not) and its buyer has SSH
keys, each booked node gets a pending ``install`` with the keys; if the buyer's keys change while it runs, a new
install replaces them (the agent rewrites the booking's lines). Once the booking has no active reservation of a
node left (it ended, was cancelled, or the node's rest was resold), each node that had an install gets one
``remove``, and installs not yet applied are superseded (never installed after the end). The rows are created when
the node's agent asks for its handovers (``agent_handovers``), so no timer is needed.

Which node asks: ``GET handovers`` carries the agent token and no host; the nodes whose host last reported with
that token are the asker (``agent_nodes``). A token several hosts share must name one with ``?hostname=``.

Incidents. ``incidents_sync`` (the periodic sweep in ``orders.delivery_tasks``) turns each node outage
(``listings.NodeOutage``: heartbeats missing > 3 minutes, or unhealthy) that overlaps a running or completed
booking of that node into one incident per (booking, outage), clipped to the booking's window, open while the
outage lasts. A buyer may report one; it counts once platform staff accept it. A node that has never run an agent
has no outages, so it produces no incident by itself: there is no evidence either way.

Delivered node-hours = reserved node-hours − the union, per node, of the counted incidents' hours.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext

from accounts.keys import organization_public_keys
from audit.services import audit_record
from listings.agent_services import outages_open_silent
from listings.models import AgentToken, NodeAgent, NodeOutage
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.locks import retry_on_contention
from orders.models import AccessHandover, Booking, DeliveryIncident, NodeReservation

Action, HandoverStatus = AccessHandover.Action, AccessHandover.Status
IncidentStatus = DeliveryIncident.Status
RUNNING = (Booking.Status.CONFIRMED, Booking.Status.ACTIVE)
DELIVERED = (Booking.Status.CONFIRMED, Booking.Status.ACTIVE, Booking.Status.COMPLETED)
OUTAGE_LOOKBACK = dt.timedelta(days=2)  # outages ended longer ago than this were synced long since
MAX_REPORTED_INCIDENTS = 20
HOUR = dt.timedelta(hours=1)
HOURS_PLACES = Decimal("0.01")


def booking_locked(pk: int) -> Booking:
    """``Booking`` ``pk`` with its row lock (the lock settlement, disputes and incident reports take), its listing,
    cluster and data centre loaded. Call inside a transaction. Raises ``NotFound`` when there is no such booking."""
    locked = (
        Booking.objects.select_for_update(of=("self",))
        .select_related("listing__cluster__data_center")
        .filter(pk=pk)
        .first()
    )
    if locked is None:
        raise NotFound(gettext("No such booking."))
    return locked


# --- handovers -------------------------------------------------------------------------------------------------------


def agent_nodes(token: AgentToken, hostname: str | None = None) -> list[NodeAgent]:
    """The nodes a handover request with ``token`` speaks for: ``hostname``'s node when given (it must be bound in
    the token's cluster: else ``NotFound``), else those whose host last reported with this token. ``Conflict`` 409
    when that is several hosts (a shared token): the request must name its host."""
    if hostname:
        agent = NodeAgent.objects.filter(cluster_id=token.cluster_id, hostname=hostname.lower()).first()
        if agent is None:
            raise NotFound(gettext("No node of this cluster has that hostname: report its inventory first."))
        return [agent]
    agents = list(NodeAgent.objects.filter(cluster_id=token.cluster_id, token=token).order_by("node_id"))
    if len(agents) > 1:
        raise Conflict(
            gettext(
                "This agent token reports for %(count)s hosts, so the platform cannot tell which node asks: give each "
                "node its own token, or name the host with ?hostname=."
            )
            % {"count": len(agents)},
            errors={"hostname": [gettext("Required for a token shared by several hosts.")]},
            code="shared_token",
        )
    return agents


def handovers_prepare(*, node_ids: list[int], login_user: str, now: dt.datetime | None = None) -> None:
    """Create the installs and removals due on ``node_ids`` at ``now`` (idempotent; see the module docstring)."""
    now = now or timezone.now()
    if not node_ids:
        return
    with transaction.atomic():
        _prepare_installs(node_ids, login_user, now)
        _prepare_removals(node_ids, now)


def _prepare_installs(node_ids: list[int], login_user: str, now: dt.datetime) -> None:
    running = list(
        NodeReservation.objects.filter(
            node_id__in=node_ids, active=True, period__contains=now, booking__status__in=RUNNING
        )
        .select_related("booking")
        .order_by("booking_id", "node_id")
    )
    keys_by_buyer: dict[int, list[str]] = {}
    creates = []
    for reservation in running:
        booking = reservation.booking
        if booking.buyer_id not in keys_by_buyer:
            keys_by_buyer[booking.buyer_id] = organization_public_keys(booking.buyer_id)
        keys = keys_by_buyer[booking.buyer_id]
        if not keys:
            continue  # nothing to install: the booking page asks the buyer for a key
        installs = AccessHandover.objects.filter(booking=booking, node_id=reservation.node_id, action=Action.INSTALL)
        latest = installs.order_by("-id").first()
        if latest is not None and latest.status in AccessHandover.OPEN:
            if latest.ssh_keys != keys or latest.login_user != login_user:
                installs.filter(pk=latest.pk, status__in=AccessHandover.OPEN).update(
                    ssh_keys=keys, login_user=login_user, updated_at=now
                )
            continue
        if latest is not None and latest.status == HandoverStatus.INSTALLED and latest.ssh_keys == keys:
            continue
        creates.append(
            AccessHandover(
                booking=booking,
                node_id=reservation.node_id,
                action=Action.INSTALL,
                login_user=login_user,
                ssh_keys=keys,
            )
        )
    AccessHandover.objects.bulk_create(creates, ignore_conflicts=True)  # a racing request created it: fine


def _prepare_removals(node_ids: list[int], now: dt.datetime) -> None:
    # A booking's access to a node ends with its last active reservation of the node: at the booking's end, or
    # earlier when the node's rest was resold (resold time always runs to the end, so it never comes back).
    reserved_on = NodeReservation.objects.filter(
        booking=OuterRef("booking"), node=OuterRef("node"), active=True, period__endswith__gt=now
    )
    ended = AccessHandover.objects.filter(node_id__in=node_ids, action=Action.INSTALL).filter(
        Q(booking__end__lte=now) | ~Exists(reserved_on)
    )
    ended.filter(status__in=AccessHandover.OPEN).update(status=HandoverStatus.SUPERSEDED, updated_at=now)
    removal = AccessHandover.objects.filter(booking=OuterRef("booking"), node=OuterRef("node"), action=Action.REMOVE)
    due = (
        ended.exclude(Exists(removal))
        .values_list("booking_id", "node_id", "login_user")
        .order_by("booking_id", "node_id", "-id")
        .distinct("booking_id", "node_id")
    )
    AccessHandover.objects.bulk_create(
        [
            AccessHandover(booking_id=booking_id, node_id=node_id, action=Action.REMOVE, login_user=login_user)
            for booking_id, node_id, login_user in due
        ],
        ignore_conflicts=True,
    )


def agent_handovers(
    *, token: AgentToken, hostname: str | None = None, now: dt.datetime | None = None
) -> QuerySet[AccessHandover]:
    """The open handovers of the asking node(s), after creating those due (``handovers_prepare``)."""
    node_ids = [agent.node_id for agent in agent_nodes(token, hostname)]
    handovers_prepare(node_ids=node_ids, login_user=token.login_user, now=now)
    return (
        AccessHandover.objects.filter(node_id__in=node_ids, status__in=AccessHandover.OPEN)
        .select_related("node")
        .order_by("id")
    )


REPORT_FOR = {
    Action.INSTALL: (HandoverStatus.INSTALLED, HandoverStatus.FAILED),
    Action.REMOVE: (HandoverStatus.REMOVED, HandoverStatus.FAILED),
}


@retry_on_contention
def handover_report(
    *,
    token: AgentToken,
    handover_id: int,
    status: str,
    host: str | None = None,
    port: int | None = None,
    user: str | None = None,
    detail: str | None = None,
    now: dt.datetime | None = None,
) -> AccessHandover:
    """Record the agent's outcome of handover ``handover_id``: ``installed`` (with the endpoint buyers connect to),
    ``removed`` or ``failed`` (with ``detail``). The handover must be on a node of the token's cluster whose host
    reports with this token (else ``NotFound``). Reporting what is already recorded answers it again; anything
    else about a finished handover is a ``Conflict`` 409. 400 for a status that does not fit the action or an
    install without its endpoint."""
    now = now or timezone.now()
    with transaction.atomic():
        handover = (
            AccessHandover.objects.select_for_update(of=("self",))
            .select_related("booking__listing__cluster__data_center", "node")
            .filter(pk=handover_id, booking__listing__cluster_id=token.cluster_id, node__agent__token=token)
            .first()
        )
        if handover is None:
            raise NotFound(gettext("No such handover for this agent."))
        if status not in REPORT_FOR[handover.action]:
            raise ApplicationError(
                gettext("Invalid handover report."),
                errors={
                    "status": [
                        gettext("A %(action)s handover is reported %(statuses)s.")
                        % {"action": handover.action, "statuses": " / ".join(REPORT_FOR[handover.action])}
                    ]
                },
            )
        if handover.status not in AccessHandover.OPEN:
            if handover.status == status:
                return handover
            raise Conflict(
                gettext("This handover is already %(status)s.") % {"status": handover.get_status_display().lower()},
                code="handover_done",
            )
        if status == HandoverStatus.INSTALLED:
            errors = {
                field: [gettext("Required when the keys were installed.")]
                for field, value in (("host", host), ("port", port), ("user", user))
                if not value
            }
            if not errors and user != handover.login_user:
                errors["user"] = [
                    gettext("The handover names login user %(user)s.") % {"user": repr(handover.login_user)}
                ]
            if errors:
                raise ApplicationError(gettext("Invalid handover report."), errors=errors)
        fields = {"status": status, "detail": (detail or "")[:300], "reported_at": now, "updated_at": now}
        if status == HandoverStatus.INSTALLED:
            fields.update(host=host, port=port, user=user)
        AccessHandover.objects.filter(pk=handover.pk).update(**fields)
        for name, value in fields.items():
            setattr(handover, name, value)
        if status == HandoverStatus.INSTALLED:  # older installs of this node are replaced by this one
            AccessHandover.objects.filter(
                booking=handover.booking, node=handover.node, action=Action.INSTALL, status=HandoverStatus.INSTALLED
            ).exclude(pk=handover.pk).update(status=HandoverStatus.SUPERSEDED, updated_at=now)
        booking = handover.booking
        data = {"booking": booking.pk, "node": handover.node.index, "action": handover.action, "status": status}
        if status == HandoverStatus.INSTALLED:
            data.update(host=host, port=port, user=user, keys=len(handover.ssh_keys))
        elif status == HandoverStatus.FAILED:
            data["detail"] = fields["detail"]
        provider_id = booking.listing.cluster.data_center.provider_id
        audit_record(action=f"orders.access_{status}", obj=handover, organization_id=provider_id, data=data)
    return handover


# --- the buyer's view ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeAccess:
    node: int
    state: str  # waiting | no_keys | pending | failed | ready | removing | removed
    host: str | None
    port: int | None
    user: str | None
    detail: str
    updated_at: dt.datetime | None

    @property
    def ssh_command(self) -> str | None:
        if not (self.host and self.user):
            return None
        port = f" -p {self.port}" if self.port and self.port != 22 else ""
        return f"ssh{port} {self.user}@{self.host}"


@dataclass(frozen=True)
class Delivery:
    reserved_node_hours: Decimal
    incident_node_hours: Decimal

    @property
    def delivered_node_hours(self) -> Decimal:
        return self.reserved_node_hours - self.incident_node_hours


def booking_node_access(booking: Booking, *, now: dt.datetime | None = None) -> list[NodeAccess]:
    """Per booked node: where the handover stands and, once installed, how to connect."""
    now = now or timezone.now()
    reservations = list(booking.reservations.select_related("node").order_by("node__index"))
    nodes = [r.node for r in reservations if r.active] or [r.node for r in reservations]
    handovers: dict[int, list[AccessHandover]] = {}
    for handover in AccessHandover.objects.filter(booking=booking).order_by("id"):
        handovers.setdefault(handover.node_id, []).append(handover)
    has_keys = None
    out = []
    for node in nodes:
        rows = handovers.get(node.pk, [])
        installed = next((h for h in reversed(rows) if h.status == HandoverStatus.INSTALLED), None)
        install = next((h for h in reversed(rows) if h.action == Action.INSTALL), None)
        removal = next((h for h in rows if h.action == Action.REMOVE), None)
        detail = ""
        if removal is not None:
            state = "removed" if removal.status == HandoverStatus.REMOVED else "removing"
        elif booking.end <= now:
            state = "removing" if installed else "removed"
        elif installed is not None:
            state = "ready"
        elif now < booking.start or booking.status not in RUNNING:
            state = "waiting"
        elif install is not None:
            state = "failed" if install.status == HandoverStatus.FAILED else "pending"
            detail = install.detail
        else:
            if has_keys is None:
                has_keys = bool(organization_public_keys(booking.buyer_id))
            state = "pending" if has_keys else "no_keys"
        show = installed if state == "ready" else None
        out.append(
            NodeAccess(
                node=node.index,
                state=state,
                host=show.host if show else None,
                port=show.port if show else None,
                user=show.user if show else None,
                detail=detail,
                updated_at=(show.reported_at if show else None),
            )
        )
    return out


def booking_incidents(booking: Booking) -> QuerySet[DeliveryIncident]:
    return DeliveryIncident.objects.filter(booking=booking).select_related("node").order_by("started_at", "id")


def booking_delivery(
    booking: Booking, *, now: dt.datetime | None = None, incidents: list[DeliveryIncident] | None = None
) -> Delivery:
    """Reserved node-hours, incident node-hours (the union per node of the counted incidents, clipped to the
    booking's window and to ``now``; an incident without a node covers every booked node) and their difference."""
    now = now or timezone.now()
    if incidents is None:
        incidents = list(booking_incidents(booking))
    node_ids = list(booking.reservations.filter(active=True).values_list("node_id", flat=True)) or list(
        booking.reservations.values_list("node_id", flat=True)
    )
    reserved = Decimal(booking.nodes) * _hours(booking.end - booking.start)
    window_end = min(booking.end, now)
    per_node: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {node_id: [] for node_id in node_ids}
    for incident in incidents:
        if incident.status not in DeliveryIncident.COUNTED:
            continue
        start = max(incident.started_at, booking.start)
        end = min(incident.ended_at or window_end, window_end)
        if end <= start:
            continue
        for node_id in [incident.node_id] if incident.node_id else node_ids:
            per_node.setdefault(node_id, []).append((start, end))
    lost = sum((_union(periods) for periods in per_node.values()), dt.timedelta())
    return Delivery(reserved_node_hours=reserved.quantize(HOURS_PLACES), incident_node_hours=_hours(lost))


def _union(periods: list[tuple[dt.datetime, dt.datetime]]) -> dt.timedelta:
    total, current = dt.timedelta(), None
    for start, end in sorted(periods):
        if current is None or start > current[1]:
            if current is not None:
                total += current[1] - current[0]
            current = [start, end]
        else:
            current[1] = max(current[1], end)
    if current is not None:
        total += current[1] - current[0]
    return total


def _hours(delta: dt.timedelta) -> Decimal:
    return (Decimal(delta.total_seconds()) / Decimal(3600)).quantize(HOURS_PLACES, rounding=ROUND_HALF_UP)


# --- incidents -------------------------------------------------------------------------------------------------------


def delivery_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The periodic delivery sweep: open the outages of nodes gone silent, then sync incidents from outages."""
    now = now or timezone.now()
    return {"silent_outages": outages_open_silent(now=now), "incidents": incidents_sync(now=now)}


def incidents_sync(*, now: dt.datetime | None = None) -> int:
    """One incident per (booking, outage) for each outage of a node that overlaps a running or completed booking
    of it, clipped to the booking's window; open while the outage goes on and the booking runs, then closed with
    its end. Idempotent; each incident opened or closed is audited. Returns how many incidents changed."""
    now = now or timezone.now()
    outages = list(
        NodeOutage.objects.filter(Q(ended_at__isnull=True) | Q(ended_at__gte=now - OUTAGE_LOOKBACK)).order_by("pk")
    )
    changed = 0
    for outage in outages:
        changed += _sync_outage(outage, now)
    return changed


@retry_on_contention
def _sync_outage(outage: NodeOutage, now: dt.datetime) -> int:
    end = outage.ended_at or now
    if end <= outage.started_at:
        return 0
    changed = 0
    with transaction.atomic():
        reservations = (
            NodeReservation.objects.filter(
                node_id=outage.node_id,
                active=True,
                period__overlap=DateTimeTZRange(outage.started_at, end, "[)"),
                booking__status__in=DELIVERED,
            )
            .select_related("booking__listing__cluster__data_center", "node")
            .order_by("booking_id")
        )
        for reservation in reservations:
            booking = reservation.booking
            # The booking's row lock (the lock settlement and a dispute take), then its status again: an incident
            # is never added to a booking being settled or settled already (its credit is final).
            if not (
                Booking.objects.select_for_update(of=("self",))
                .filter(pk=booking.pk, status__in=DELIVERED)
                .values_list("pk", flat=True)
                .first()
            ):
                continue
            start = max(outage.started_at, booking.start)
            ongoing = outage.ended_at is None and booking.end > now
            stop = None if ongoing else min(end, booking.end)
            if stop is not None and stop <= start:
                continue
            incident = DeliveryIncident.objects.select_for_update().filter(booking=booking, outage=outage).first()
            data = {
                "booking": booking.pk,
                "node": reservation.node.index,
                "source": outage.kind,
                "started_at": start.isoformat(),
            }
            if incident is None:
                incident = DeliveryIncident.objects.create(
                    booking=booking,
                    node_id=outage.node_id,
                    outage=outage,
                    source=outage.kind,
                    status=IncidentStatus.OPEN if ongoing else IncidentStatus.CLOSED,
                    started_at=start,
                    ended_at=stop,
                )
                _audit_incident(incident, booking, "orders.incident_opened", {**data, **_end(stop)})
                changed += 1
            elif incident.status == IncidentStatus.OPEN and not ongoing:
                DeliveryIncident.objects.filter(pk=incident.pk, status=IncidentStatus.OPEN).update(
                    status=IncidentStatus.CLOSED, ended_at=stop, updated_at=now
                )
                _audit_incident(incident, booking, "orders.incident_closed", {**data, **_end(stop)})
                changed += 1
    return changed


def _end(stop: dt.datetime | None) -> dict:
    return {"ended_at": stop.isoformat()} if stop else {}


def _audit_incident(incident: DeliveryIncident, booking: Booking, action: str, data: dict, actor=None) -> None:
    provider_id = booking.listing.cluster.data_center.provider_id
    audit_record(action=action, obj=incident, actor=actor, organization_id=provider_id, data=data)


@retry_on_contention
def incident_report(
    *,
    booking: Booking,
    actor,
    started_at: dt.datetime,
    ended_at: dt.datetime | None = None,
    node: int | None = None,
    description: str,
    now: dt.datetime | None = None,
) -> DeliveryIncident:
    """The buyer reports that ``booking`` (or its node number ``node``) did not deliver from ``started_at`` (to
    ``ended_at``, or still). Stored as ``reported``: it counts once platform staff accept it. Raises
    ``ApplicationError`` 400 with field errors, ``Conflict`` 409 (not running or completed, or too many reports)."""
    now = now or timezone.now()
    description = (description or "").strip()
    with transaction.atomic():
        locked = booking_locked(booking.pk)
        if locked.status not in (Booking.Status.ACTIVE, Booking.Status.COMPLETED) and not (
            locked.status == Booking.Status.CONFIRMED and locked.start <= now
        ):
            raise Conflict(
                gettext("Only a running or completed, unsettled booking can have an incident reported."),
                errors={"status": [locked.status]},
                code="not_running",
            )
        errors: dict[str, list[str]] = {}
        if not description:
            errors["description"] = [gettext("Say what did not work.")]
        if not locked.start <= started_at < min(locked.end, now):
            errors["started_at"] = [gettext("Must lie within the booking's window, and not in the future.")]
        if ended_at is not None and not started_at < ended_at <= min(locked.end, now):
            errors["ended_at"] = [
                gettext("Must be after the start, within the booking's window, and not in the future.")
            ]
        node_row = None
        if node is not None:
            node_row = (
                NodeReservation.objects.filter(booking=locked, node__index=node, active=True)
                .select_related("node")
                .first()
            )
            if node_row is None:
                errors["node"] = [gettext("Not a node of this booking.")]
        if errors:
            raise ApplicationError(gettext("Invalid incident report."), errors=errors)
        if (
            DeliveryIncident.objects.filter(booking=locked, source=DeliveryIncident.Source.BUYER).count()
            >= MAX_REPORTED_INCIDENTS
        ):
            raise Conflict(
                gettext("A booking takes at most %(count)s reported incidents.") % {"count": MAX_REPORTED_INCIDENTS}
            )
        incident = DeliveryIncident.objects.create(
            booking=locked,
            node=node_row.node if node_row else None,
            source=DeliveryIncident.Source.BUYER,
            status=IncidentStatus.REPORTED,
            started_at=started_at,
            ended_at=ended_at,
            description=description,
            reported_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        data = {"booking": locked.pk, "node": node, "source": "buyer", "started_at": started_at.isoformat()}
        _audit_incident(incident, locked, "orders.incident_reported", {**data, **_end(ended_at)}, actor=actor)
    return incident


RESOLUTIONS = {"accept": IncidentStatus.CLOSED, "reject": IncidentStatus.REJECTED}
REVIEW_STATUSES = (IncidentStatus.REPORTED, *RESOLUTIONS.values())


def incidents_for_review(*, status: str | None = None) -> QuerySet[DeliveryIncident]:
    """The buyers' reported incidents (what platform staff review): those awaiting review first, the longest
    waiting first (settlement holds their bookings), then the decided ones, the latest decision first (a decision
    is the last write of a buyer's incident, so ``updated_at`` is when it was made). ``status`` (one of
    ``REVIEW_STATUSES``) keeps only those; the booking, its buyer, the listing's cluster and provider, the node and
    the reporter are loaded."""
    waiting = Q(status=IncidentStatus.REPORTED)
    incidents = DeliveryIncident.objects.filter(source=DeliveryIncident.Source.BUYER)
    if status is not None:
        incidents = incidents.filter(status=status)
    return (
        incidents.select_related(
            "booking__buyer", "booking__listing__cluster__data_center__provider", "node", "reported_by"
        )
        .annotate(
            waiting_first=Case(When(waiting, then=Value(0)), default=Value(1), output_field=IntegerField()),
            waiting_since=Case(When(waiting, then=F("created_at"))),
            decided_at=Case(When(~waiting, then=F("updated_at"))),
        )
        .order_by("waiting_first", F("waiting_since").asc(), F("decided_at").desc(), "id")
    )


@transaction.atomic
def incident_resolve(*, incident: DeliveryIncident, actor, decision: str, note: str = "") -> DeliveryIncident:
    """Platform staff decide on a buyer's reported incident: ``accept`` (it counts; an open-ended report is closed
    now) or ``reject`` (a ``note`` is required). ``Conflict`` 409 when it is not awaiting review."""
    note = (note or "").strip()
    if decision not in RESOLUTIONS:
        raise ApplicationError(gettext("Invalid decision."), errors={"decision": [gettext("Choose accept or reject.")]})
    if decision == "reject" and not note:
        raise ApplicationError(
            gettext("Invalid decision."), errors={"note": [gettext("Say why the report is rejected.")]}
        )
    now = timezone.now()
    locked = (
        DeliveryIncident.objects.select_for_update(of=("self",))
        .select_related("booking__listing__cluster__data_center")
        .filter(pk=incident.pk)
        .first()
    )
    if locked is None:
        raise NotFound(gettext("No such incident."))
    if locked.status != IncidentStatus.REPORTED:
        raise Conflict(gettext("Only a reported incident awaiting review can be decided."), code="not_reported")
    ended_at = locked.ended_at or min(locked.booking.end, now)
    DeliveryIncident.objects.filter(pk=locked.pk, status=IncidentStatus.REPORTED).update(
        status=RESOLUTIONS[decision], resolution_note=note, ended_at=ended_at, updated_at=now
    )
    locked.refresh_from_db()
    audit_record(
        action=f"orders.incident_{'accepted' if decision == 'accept' else 'rejected'}",
        obj=locked,
        actor=actor,
        organization_id=locked.booking.listing.cluster.data_center.provider_id,
        data={"booking": locked.booking_id, "note": note},
    )
    return locked
