"""Writes for the supply side: data centres, clusters (with their nodes and provenance), listings and their status
pipeline. Every status change takes a row lock, checks ``Listing.TRANSITIONS``, updates conditionally
(``marketplace.core.pipeline.advance``) and writes an audit event in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from accounts.models import Organization
from audit.services import audit_record
from listings import signals
from listings.agent_services import provenance_serial_errors
from listings.models import Accelerator, Cluster, DataCenter, Listing, Node, ProvenanceDeclaration
from listings.selectors import provenance_cleared
from marketplace.core import hours
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.money import to_price
from marketplace.core.pipeline import advance

Status = Listing.Status

EDITABLE_STATUSES = frozenset({Status.DRAFT, Status.REJECTED, Status.PAUSED})
MAX_NODES_PER_CLUSTER = 4096
MAX_MIN_HOURS = 24 * 366  # a listing's minimum booking: at most a year
SLA_DEFAULT, SLA_MIN = Decimal("99.00"), Decimal("90.00")  # promised availability, per cent (issue 20)
REVIEW_DECISIONS = ("approve", "reject")


# --- validation helpers ------------------------------------------------------------------------------------------
def window_errors(
    start, end, *, start_field: str = "available_from", end_field: str = "available_until", min_hours: int | None = None
) -> dict[str, list[str]]:
    """Field errors for a window of whole UTC hours: aware datetimes, on the hour, ``end > start`` and, with
    ``min_hours``, at least that long. Empty when the window is good."""
    errors: dict[str, list[str]] = {}
    for field, value in ((start_field, start), (end_field, end)):
        if problem := hours.hour_error(value):
            errors[field] = [problem]
    if errors:
        return errors
    if end <= start:
        errors[end_field] = [gettext("Must be after the start.")]
    elif min_hours is not None and (end - start) < dt.timedelta(hours=min_hours):
        errors[end_field] = [
            ngettext(
                "The window must be at least the minimum of %(count)s hour.",
                "The window must be at least the minimum of %(count)s hours.",
                min_hours,
            )
            % {"count": min_hours}
        ]
    return errors


def _listing_terms(*, price_per_gpu_hour, available_from, available_until, min_hours) -> dict:
    """Validated listing terms, or ``ApplicationError`` 400 naming every bad field."""
    errors: dict[str, list[str]] = {}
    try:
        price = to_price(price_per_gpu_hour)
        if price <= 0:
            errors["price_per_gpu_hour"] = [gettext("Must be greater than zero.")]
    except (TypeError, InvalidOperation, ValueError):
        errors["price_per_gpu_hour"] = [gettext("A decimal price is required.")]
        price = None
    if not isinstance(min_hours, int) or isinstance(min_hours, bool) or not 1 <= min_hours <= MAX_MIN_HOURS:
        errors["min_hours"] = [
            gettext("Must be a whole number of hours, from 1 to %(maximum)s.") % {"maximum": MAX_MIN_HOURS}
        ]
        min_hours = None
    window = window_errors(available_from, available_until, min_hours=min_hours)
    if not window and available_until <= timezone.now():
        window["available_until"] = [gettext("This window has already ended: offer time still to come.")]
    errors.update(window)
    if errors:
        raise ApplicationError(gettext("Invalid listing."), errors=errors)
    return {
        "price_per_gpu_hour": price,
        "available_from": available_from,
        "available_until": available_until,
        "min_hours": min_hours,
    }


def provenance_required(cluster: Cluster) -> bool:
    return cluster.accelerator.export_controlled


# --- data centres and clusters -----------------------------------------------------------------------------------
@transaction.atomic
def data_center_create(
    *, provider: Organization, name: str, city: str, operator: str, region: str = "", actor=None
) -> DataCenter:
    """Create a data centre of ``provider``. Raises ``ApplicationError`` 400 (bad field, name taken) or 403
    (``provider`` is not a provider organization)."""
    if provider.kind != Organization.Kind.PROVIDER:
        raise ApplicationError(gettext("Only provider organizations have data centres."), status=403)
    data_center = DataCenter(
        provider=provider, name=(name or "").strip(), city=city, operator=operator, region=(region or "").strip()
    )
    try:
        data_center.full_clean(exclude=["provider"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise ApplicationError(gettext("Invalid data centre."), errors=exc.message_dict) from None
    if DataCenter.objects.filter(provider=provider, name=data_center.name).exists():
        raise ApplicationError(
            gettext("Invalid data centre."), errors={"name": [gettext("You already have a data centre of that name.")]}
        )
    data_center.save()
    audit_record(
        action="listings.data_center_created",
        obj=data_center,
        actor=actor,
        organization_id=provider.pk,
        data={"name": data_center.name, "city": city, "operator": operator},
    )
    return data_center


def nodes_ensure(cluster: Cluster) -> None:
    """Make sure ``cluster`` has its ``Node`` rows 1..node_count (idempotent; existing rows are kept)."""
    Node.objects.bulk_create(
        (Node(cluster=cluster, index=i) for i in range(1, cluster.node_count + 1)), ignore_conflicts=True
    )


@transaction.atomic
def cluster_create(
    *,
    data_center: DataCenter,
    name: str,
    accelerator: Accelerator,
    gpus_per_node: int,
    node_count: int,
    interconnect: str = "",
    provenance: dict | None = None,
    actor=None,
) -> Cluster:
    """Create a cluster with ``Node`` rows 1..``node_count``.

    An export-controlled ``accelerator`` requires ``provenance`` = {invoice_number, supplier, serial_numbers
    (non-empty list), import_documents}; it is stored as a pending declaration for platform review.
    Raises ``ApplicationError`` 400 with field errors (``provenance.<field>`` for the declaration).
    """
    errors: dict[str, list[str]] = {}
    if not isinstance(gpus_per_node, int) or not 1 <= gpus_per_node <= 64:
        errors["gpus_per_node"] = [gettext("Must be between 1 and 64.")]
    if not isinstance(node_count, int) or not 1 <= node_count <= MAX_NODES_PER_CLUSTER:
        errors["node_count"] = [gettext("Must be between 1 and %(maximum)s.") % {"maximum": MAX_NODES_PER_CLUSTER}]
    name = (name or "").strip()
    if not name:
        errors["name"] = [gettext("This field is required.")]
    elif Cluster.objects.filter(data_center=data_center, name=name).exists():
        errors["name"] = [gettext("This data centre already has a cluster of that name.")]
    if accelerator.export_controlled:
        errors.update(_provenance_errors(provenance) or provenance_serial_errors(provenance))  # unique serials
    if errors:
        raise ApplicationError(gettext("Invalid cluster."), errors=errors)
    cluster = Cluster.objects.create(
        data_center=data_center,
        name=name,
        accelerator=accelerator,
        gpus_per_node=gpus_per_node,
        node_count=node_count,
        interconnect=(interconnect or "").strip(),
    )
    nodes_ensure(cluster)
    if accelerator.export_controlled:
        ProvenanceDeclaration.objects.create(
            cluster=cluster,
            invoice_number=provenance["invoice_number"].strip(),
            supplier=provenance["supplier"].strip(),
            serial_numbers=[s.strip() for s in provenance["serial_numbers"] if s and s.strip()],
            import_documents=provenance["import_documents"].strip(),
        )
    audit_record(
        action="listings.cluster_created",
        obj=cluster,
        actor=actor,
        organization_id=data_center.provider_id,
        data={
            "accelerator": accelerator.slug,
            "nodes": node_count,
            "gpus_per_node": gpus_per_node,
            "provenance": bool(accelerator.export_controlled),
        },
    )
    return cluster


def _provenance_errors(provenance: dict | None) -> dict[str, list[str]]:
    if not provenance:
        return {
            "provenance": [
                "Export-controlled accelerators need a provenance declaration (invoice number, "
                "supplier, serial numbers, import documents)."
            ]
        }
    errors = {}
    for field in ("invoice_number", "supplier", "import_documents"):
        if not str(provenance.get(field) or "").strip():
            errors[f"provenance.{field}"] = [gettext("This field is required.")]
    serials = provenance.get("serial_numbers") or []
    if not isinstance(serials, list | tuple) or not [s for s in serials if str(s).strip()]:
        errors["provenance.serial_numbers"] = [gettext("List at least one serial number.")]
    return errors


# --- listings ----------------------------------------------------------------------------------------------------
@transaction.atomic
def listing_create(
    *,
    provider: Organization,
    cluster: Cluster,
    price_per_gpu_hour,
    available_from: dt.datetime,
    available_until: dt.datetime,
    min_hours: int = 1,
    sla_percent=SLA_DEFAULT,
    actor=None,
) -> Listing:
    """A draft listing of ``cluster`` (which must belong to ``provider``: else 400 on ``cluster``).

    ``sla_percent`` (90 to 100, default 99) is the availability promised: incident node-hours beyond it are
    credited at settlement (issue 20). It is fixed at creation: ``listing_update`` refuses to change it, so a
    promise made to bookings cannot be weakened under them.

    The window is whole UTC hours, ``available_until > available_from`` and at least ``min_hours`` long; the price
    is positive. Raises ``ApplicationError`` 400 with field errors; nothing is written then.
    """
    if cluster.data_center.provider_id != provider.pk:
        raise ApplicationError(gettext("Invalid listing."), errors={"cluster": [gettext("Not one of your clusters.")]})
    terms = _listing_terms(
        price_per_gpu_hour=price_per_gpu_hour,
        available_from=available_from,
        available_until=available_until,
        min_hours=min_hours,
    )
    try:
        sla = Decimal(str(sla_percent)).quantize(Decimal("0.01"))
    except (InvalidOperation, TypeError, ValueError):
        sla = None
    if sla is None or not SLA_MIN <= sla <= Decimal(100):
        raise ApplicationError(
            gettext("Invalid listing."), errors={"sla_percent": [gettext("Must be from 90 to 100 per cent.")]}
        )
    listing = Listing.objects.create(cluster=cluster, status=Status.DRAFT, sla_percent=sla, **terms)
    audit_record(
        action="listings.listing_created",
        obj=listing,
        actor=actor,
        organization_id=provider.pk,
        data={**_terms_data(terms), "sla_percent": str(sla)},
    )
    return listing


@transaction.atomic
def listing_update(*, listing: Listing, actor=None, **changes) -> Listing:
    """Change price, window or minimum hours of a draft, rejected or paused listing.

    ``changes`` may hold price_per_gpu_hour, available_from, available_until, min_hours (others: 400). Raises
    ``ApplicationError`` 400 (bad terms) or 409 (an active, pending or closed listing: pause it first).
    """
    unknown = set(changes) - {"price_per_gpu_hour", "available_from", "available_until", "min_hours"}
    if unknown:
        raise ApplicationError(
            gettext("Invalid listing."), errors={f: [gettext("This field cannot be changed.")] for f in unknown}
        )
    locked = _lock(listing.pk)
    if locked.status not in EDITABLE_STATUSES:
        raise Conflict(
            gettext("A %(status)s listing cannot be edited; pause it first.")
            % {"status": locked.get_status_display().lower()},
            errors={
                "status": [gettext("Not editable while %(status)s.") % {"status": locked.get_status_display().lower()}]
            },
        )
    current = {
        "price_per_gpu_hour": locked.price_per_gpu_hour,
        "available_from": locked.available_from,
        "available_until": locked.available_until,
        "min_hours": locked.min_hours,
    }
    terms = _listing_terms(**{**current, **changes})
    Listing.objects.filter(pk=locked.pk, status=locked.status).update(**terms, updated_at=timezone.now())
    audit_record(
        action="listings.listing_updated",
        obj=locked,
        actor=actor,
        organization_id=locked.cluster.data_center.provider_id,
        data=_terms_data(terms),
    )
    locked.refresh_from_db()
    return locked


def _terms_data(terms: dict) -> dict:
    return {
        "price_per_gpu_hour": str(terms["price_per_gpu_hour"]),
        "available_from": terms["available_from"].isoformat(),
        "available_until": terms["available_until"].isoformat(),
        "min_hours": terms["min_hours"],
    }


def _lock(listing_id: int) -> Listing:
    try:
        return (
            Listing.objects.select_for_update(of=("self",))
            .select_related("cluster__data_center", "cluster__accelerator")
            .get(pk=listing_id)
        )
    except Listing.DoesNotExist:
        raise NotFound(gettext("Listing not found.")) from None


def _transition(
    listing: Listing,
    to: str,
    *,
    actor=None,
    action: str,
    note: str = "",
    data: dict | None = None,
    locked: Listing | None = None,
) -> Listing:
    """Move ``listing`` to ``to`` under a row lock; conditional update; one audit event. Call inside a transaction.
    Raises ``Conflict`` (409) when ``Listing.TRANSITIONS`` forbids it or (to active) provenance is not cleared."""
    locked = locked or _lock(listing.pk)
    if to == Status.ACTIVE and locked.can_become(to) and not provenance_cleared(locked.cluster):
        raise Conflict(
            gettext("The cluster's provenance declaration is not approved yet."),
            errors={"provenance": [gettext("Awaiting platform review.")]},
            code="provenance_pending",
        )
    fields = {"review_note": note} if note or to in (Status.ACTIVE, Status.REJECTED) else {}
    from_status = advance(locked, to, **fields)
    audit_record(
        action=action,
        obj=locked,
        actor=actor,
        organization_id=locked.cluster.data_center.provider_id,
        data={"from": from_status, "to": to, **({"note": note} if note else {}), **(data or {})},
    )
    if to == Status.ACTIVE:  # after commit: receivers (bid matching) must only ever see a committed activation
        listing_id = locked.pk
        transaction.on_commit(
            lambda: signals.listing_activated.send(sender=Listing, listing_id=listing_id), robust=True
        )
    locked.refresh_from_db()
    return locked


@transaction.atomic
def listing_submit(*, listing: Listing, actor=None) -> Listing:
    """draft | rejected → pending_review. The window must still lie in the future (409 otherwise)."""
    locked = _lock(listing.pk)
    if locked.available_until <= timezone.now():
        raise Conflict(
            gettext("The listing's window has passed; change it first."),
            errors={"available_until": [gettext("In the past.")]},
        )
    return _transition(listing, Status.PENDING_REVIEW, actor=actor, action="listings.listing_submitted", locked=locked)


@transaction.atomic
def listing_review(*, listing: Listing, actor, decision: str, note: str = "") -> Listing:
    """Platform staff decide on a pending listing: ``approve`` → active, ``reject`` → rejected (``note`` required).

    Approving a listing of an export-controlled cluster also approves its provenance declaration (same
    transaction, audited). Raises ``ApplicationError`` 400 (bad decision / missing note), 409 (not pending).
    """
    note = (note or "").strip()
    if decision not in REVIEW_DECISIONS:
        raise ApplicationError(gettext("Invalid review."), errors={"decision": [gettext("Choose approve or reject.")]})
    if decision == "reject" and not note:
        raise ApplicationError(
            gettext("Invalid review."), errors={"note": [gettext("Say why the listing is rejected.")]}
        )
    locked = _lock(listing.pk)
    if locked.status != Status.PENDING_REVIEW:
        raise Conflict(
            gettext("Only listings pending review can be reviewed."),
            errors={"status": [locked.status]},
            code="invalid_transition",
        )
    if decision == "reject":
        return _transition(
            listing, Status.REJECTED, actor=actor, action="listings.listing_rejected", note=note, locked=locked
        )
    data = {}
    if provenance_required(locked.cluster):
        data["provenance"] = _provenance_approve(locked.cluster, actor=actor, note=note)
    return _transition(
        listing, Status.ACTIVE, actor=actor, action="listings.listing_approved", note=note, data=data, locked=locked
    )


def _provenance_approve(cluster: Cluster, *, actor, note: str) -> str:
    declaration = ProvenanceDeclaration.objects.select_for_update(of=("self",)).filter(cluster=cluster).first()
    if declaration is None:
        raise Conflict(
            gettext("This export-controlled cluster has no provenance declaration."),
            errors={"provenance": [gettext("Missing.")]},
            code="provenance_missing",
        )
    if declaration.status != ProvenanceDeclaration.Status.APPROVED:
        ProvenanceDeclaration.objects.filter(pk=declaration.pk, status=declaration.status).update(
            status=ProvenanceDeclaration.Status.APPROVED,
            reviewed_by=actor,
            reviewed_at=timezone.now(),
            review_note=note,
            updated_at=timezone.now(),
        )
        audit_record(
            action="listings.provenance_approved",
            obj=declaration,
            actor=actor,
            organization_id=cluster.data_center.provider_id,
            data={"cluster": cluster.pk, "invoice_number": declaration.invoice_number},
        )
    return ProvenanceDeclaration.Status.APPROVED


@transaction.atomic
def listing_pause(*, listing: Listing, actor=None) -> Listing:
    """active → paused: no new bookings; existing bookings stand."""
    return _transition(listing, Status.PAUSED, actor=actor, action="listings.listing_paused")


@transaction.atomic
def listing_resume(*, listing: Listing, actor=None) -> Listing:
    """paused → active (409 when provenance is not approved)."""
    return _transition(listing, Status.ACTIVE, actor=actor, action="listings.listing_resumed")


def listings_close_expired(*, now: dt.datetime | None = None, batch_size: int = 500) -> int:
    """Close every listing whose window has ended (``available_until <= now``). For the settlement sweep.

    Works in batches of ``SELECT … FOR UPDATE SKIP LOCKED`` (rows another worker holds are left for the next run),
    each its own transaction with a conditional update and one audit event per listing. A second run is a no-op.
    Returns how many listings were closed.
    """
    now = now or timezone.now()
    open_statuses = Listing.statuses_leading_to(Status.CLOSED)
    closed = 0
    while True:
        with transaction.atomic():
            batch = list(
                Listing.objects.select_for_update(of=("self",), skip_locked=True)
                .filter(status__in=open_statuses, available_until__lte=now)
                .select_related("cluster__data_center")
                .order_by("pk")[:batch_size]
            )
            if not batch:
                return closed
            for listing in batch:
                from_status = advance(listing, Status.CLOSED, updated_at=now)
                closed += 1
                audit_record(
                    action="listings.listing_closed",
                    obj=listing,
                    organization_id=listing.cluster.data_center.provider_id,
                    data={"from": from_status, "to": Status.CLOSED, "reason": "window ended"},
                )
        if len(batch) < batch_size:
            return closed
