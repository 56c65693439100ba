"""Writes for the provider agent (issue 20): cluster agent tokens, node bindings, inventory reports, heartbeats and
the outages they reveal, and the uniqueness of declared serial numbers.

Node identity: the agent reports its ``hostname``. The first inventory from a hostname the cluster has not seen
binds it to the cluster's lowest-numbered node without a host (``node_bind``); from then on that hostname *is*
that node. When every node is bound, a new hostname is refused (409) until the provider releases a binding
(``node_release``: hardware replaced or renamed). Heartbeats from a hostname not bound yet are refused (409):
the agent reports its inventory first, every cycle after a restart.

Handovers: the agent's ``GET handovers`` names no host, so the platform knows the asking node by its token: each
``NodeAgent`` remembers the token its host last reported with. Give each node its own token (any number per
cluster); a token several hosts share still reports inventory and heartbeats (each names its host) but gets its
handovers only with ``?hostname=`` (``orders.handovers.agent_nodes``).

Heartbeats: each carries a ``sequence`` that must exceed the node's last accepted one (a replay, or a second
request racing with the same sequence, answers 409 and writes nothing). What is kept is compact: the node's last
heartbeat (``NodeAgent``) and ``NodeOutage`` rows: a silence of more than ``SILENCE`` between two heartbeats, or a
run of unhealthy heartbeats. ``outages_open_silent`` (a periodic sweep) opens the silence of a node that has
stopped sending; its next heartbeat closes it.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections import Counter

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from audit.services import audit_record
from listings import hardware
from listings.agent_selectors import (
    TOKEN_PREFIX,
    agent_token_hash,
    serials_declared_elsewhere,
    serials_reported_elsewhere,
)
from listings.models import (
    AgentToken,
    Cluster,
    Node,
    NodeAgent,
    NodeInventoryReport,
    NodeOutage,
    ProvenanceDeclaration,
)
from listings.signals import inventory_mismatched
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.locks import retry_on_contention

SILENCE = dt.timedelta(minutes=3)  # heartbeats every minute: more than three minutes without one is an outage
MAX_ACTIVE_TOKENS = 20
LOGIN_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?")
UNHEALTHY = frozenset({"alarm", "critical"})
# First key of the advisory lock that serialises serial-number declarations (so two clusters declaring the same
# serial at once cannot both pass the check).
SERIAL_LOCK_SPACE = 0x73657269  # "seri"


# --- tokens --------------------------------------------------------------------------------------------------------


def _provider_id(cluster: Cluster) -> int:
    return Cluster.objects.filter(pk=cluster.pk).values_list("data_center__provider_id", flat=True).get()


@transaction.atomic
def agent_token_create(*, cluster: Cluster, name: str, login_user: str = "gpux", actor=None) -> tuple[AgentToken, str]:
    """A new agent token for ``cluster``; returns ``(token, text)``: the text is shown once and never stored.

    ``login_user`` is the local account its agents hand to buyers (a POSIX user name, never root). Raises
    ``ApplicationError`` 400 with field errors, ``Conflict`` 409 when the cluster has ``MAX_ACTIVE_TOKENS``.
    """
    name = (name or "").strip()
    login_user = (login_user or "").strip()
    errors: dict[str, list[str]] = {}
    if not name or len(name) > 80 or not name.isprintable():
        errors["name"] = [gettext("Give the token a name of 1 to 80 printable characters.")]
    if not LOGIN_USER.fullmatch(login_user):
        errors["login_user"] = [gettext("A local user name: lower-case letters, digits, '_' or '-', at most 32.")]
    elif login_user == "root":
        errors["login_user"] = [gettext("Buyers must never get root: choose an unprivileged account.")]
    if errors:
        raise ApplicationError(gettext("Invalid agent token."), errors=errors)
    Cluster.objects.select_for_update(no_key=True).filter(pk=cluster.pk).first()  # serialise the count below
    if AgentToken.objects.filter(cluster=cluster, revoked_at__isnull=True).count() >= MAX_ACTIVE_TOKENS:
        raise Conflict(
            gettext("This cluster already has %(count)s active agent tokens; revoke one first.")
            % {"count": MAX_ACTIVE_TOKENS}
        )
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AgentToken.objects.create(
        cluster=cluster,
        name=name,
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        token_hash=agent_token_hash(raw),
        login_user=login_user,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(
        action="listings.agent_token_created",
        obj=token,
        actor=actor,
        organization_id=_provider_id(cluster),
        data={"cluster": cluster.pk, "name": name, "prefix": token.prefix, "login_user": login_user},
    )
    return token, raw


@transaction.atomic
def agent_token_revoke(*, token: AgentToken, actor=None) -> AgentToken:
    """Revoke ``token``: every request with it answers 401 from now on. ``Conflict`` 409 when already revoked."""
    now = timezone.now()
    revoked = AgentToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=actor if getattr(actor, "is_authenticated", False) else None, updated_at=now
    )
    if not revoked:
        raise Conflict(gettext("This agent token is already revoked."), code="already_revoked")
    token.refresh_from_db()
    audit_record(
        action="listings.agent_token_revoked",
        obj=token,
        actor=actor,
        organization_id=_provider_id(token.cluster),
        data={"cluster": token.cluster_id, "name": token.name, "prefix": token.prefix},
    )
    return token


# --- declared serials ----------------------------------------------------------------------------------------------


def provenance_serial_errors(provenance: dict | None, *, cluster_id: int | None = None) -> dict[str, list[str]]:
    """Field errors when a declaration lists a serial twice or one another cluster already declared; empty when
    fine. Call inside the declaring transaction: it takes a transaction-level advisory lock, so two declarations
    of one serial at once cannot both pass."""
    serials = (provenance or {}).get("serial_numbers")
    if not isinstance(serials, list | tuple):
        return {}
    normalised = [hardware.normalise_serial(s) for s in serials if isinstance(s, str) and s.strip()]
    twice = sorted(serial for serial, n in Counter(normalised).items() if n > 1)
    if twice:
        return {"provenance.serial_numbers": [gettext("Listed twice: %(serials)s.") % {"serials": ", ".join(twice)}]}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [SERIAL_LOCK_SPACE])
    elsewhere = serials_declared_elsewhere(normalised, cluster_id=cluster_id)
    if elsewhere:
        return {
            "provenance.serial_numbers": [
                gettext("Already declared for another cluster: %(serials)s.") % {"serials": ", ".join(elsewhere)}
            ]
        }
    return {}


# --- node identity -------------------------------------------------------------------------------------------------


def hostname_error(hostname) -> str | None:
    if not isinstance(hostname, str) or not HOSTNAME.fullmatch(hostname):
        return "A host name: letters, digits, '-' and dots, at most 253 characters."
    return None


def _bound_agent(cluster_id: int, hostname: str, *, lock: bool = False) -> NodeAgent | None:
    qs = NodeAgent.objects.filter(cluster_id=cluster_id, hostname=hostname.lower()).select_related("node")
    if lock:
        qs = qs.select_for_update(of=("self",))
    return qs.first()


def node_bind(
    *, cluster: Cluster, hostname: str, token: AgentToken | None = None, now: dt.datetime | None = None
) -> NodeAgent:
    """The binding of ``hostname`` (case-insensitive) in ``cluster``, created on the lowest-numbered node without a
    host when there is none (row-locked), and marked as reporting with ``token``. Call inside a transaction.
    ``Conflict`` 409 when every node is bound."""
    if problem := hostname_error(hostname):
        raise ApplicationError(gettext("Invalid hostname."), errors={"hostname": [problem]})
    hostname = hostname.lower()
    agent = _bound_agent(cluster.pk, hostname, lock=True)
    if agent is None:
        Cluster.objects.select_for_update(no_key=True).filter(pk=cluster.pk).first()  # one binder at a time
        agent = _bound_agent(cluster.pk, hostname, lock=True)
    if agent is not None:
        if token is not None and agent.token_id != token.pk:
            NodeAgent.objects.filter(pk=agent.pk).update(token=token)
            agent.token = token
        return agent
    node = Node.objects.filter(cluster=cluster, agent__isnull=True).order_by("index").first()
    if node is None:
        raise Conflict(
            gettext(
                "Every node of this cluster is bound to another host; release %(host)s's node on the cluster's agent "
                "page first."
            )
            % {"host": hostname},
            errors={"hostname": [gettext("No free node to bind this host to.")]},
            code="no_free_node",
        )
    agent = NodeAgent.objects.create(
        node=node, cluster=cluster, hostname=hostname, bound_at=now or timezone.now(), token=token
    )
    agent.node = node
    provider_id = _provider_id(cluster)
    audit_record(
        action="listings.node_bound",
        obj=node,
        organization_id=provider_id,
        data={"cluster": cluster.pk, "node": node.index, "hostname": hostname},
    )
    return agent


@transaction.atomic
def node_release(*, cluster: Cluster, index: int, actor=None) -> Node:
    """Unbind node ``index`` of ``cluster`` from its host (new hardware, new name): its last inventory is dropped and
    open outages end now. ``NotFound`` for an unknown node, ``Conflict`` 409 when it has no host."""
    node = Node.objects.filter(cluster=cluster, index=index).first()
    if node is None:
        raise NotFound(gettext("No such node."))
    agent = NodeAgent.objects.select_for_update().filter(node=node).first()
    if agent is None:
        raise Conflict(gettext("This node is not bound to a host."), code="not_bound")
    now = timezone.now()
    NodeOutage.objects.filter(node=node, ended_at__isnull=True).update(ended_at=now)
    NodeInventoryReport.objects.filter(node=node).delete()
    agent.delete()
    audit_record(
        action="listings.node_released",
        obj=node,
        actor=actor,
        organization_id=_provider_id(cluster),
        data={"cluster": cluster.pk, "node": index, "hostname": agent.hostname},
    )
    return node


# --- inventory -----------------------------------------------------------------------------------------------------


def _declared(cluster: Cluster) -> hardware.Declared:
    declaration = ProvenanceDeclaration.objects.filter(cluster=cluster).only("serial_numbers").first()
    serials = frozenset(hardware.normalise_serial(s) for s in (declaration.serial_numbers if declaration else []))
    return hardware.Declared(
        accelerator_name=cluster.accelerator.name,
        vendor=cluster.accelerator.vendor,
        memory_gb=cluster.accelerator.memory_gb,
        gpus_per_node=cluster.gpus_per_node,
        serials=serials,
    )


@retry_on_contention
def inventory_report(
    *,
    token: AgentToken,
    hostname: str,
    vendor: str,
    gpus: list[dict],
    agent_version: str = "",
    now: dt.datetime | None = None,
) -> NodeInventoryReport:
    """Store a node's inventory (validated ``gpus``: dicts with index, model, uuid, serial, memory_mib, driver …) as
    its latest, binding ``hostname`` to a node first if needed, and compare it with what the cluster declared.

    A mismatch (``listings.hardware.compare``) is stored on the report, blocks the cluster's vouchers and records a
    ``listings.inventory_mismatch`` audit event (when it differs from the node's previous report); a report that
    matches again records ``listings.inventory_matched``. Raises ``Conflict`` 409 when no node is free.
    """
    now = now or timezone.now()
    with transaction.atomic():
        cluster = Cluster.objects.select_related("accelerator", "data_center").get(pk=token.cluster_id)
        agent = node_bind(cluster=cluster, hostname=hostname, token=token, now=now)
        reported = [
            hardware.ReportedGpu(model=gpu["model"], memory_mib=gpu.get("memory_mib"), serial=gpu.get("serial"))
            for gpu in gpus
        ]
        serials = sorted({hardware.normalise_serial(g.serial) for g in reported if g.serial})
        foreign = set(serials_declared_elsewhere(serials, cluster_id=cluster.pk))
        foreign |= set(serials_reported_elsewhere(serials, cluster_id=cluster.pk))
        mismatches = hardware.compare(_declared(cluster), vendor, reported, foreign)
        previous = NodeInventoryReport.objects.filter(node_id=agent.node_id).first()
        models = Counter(g.model for g in reported)
        memories = [g.memory_mib for g in reported if g.memory_mib is not None]
        drivers = [gpu.get("driver") for gpu in gpus if gpu.get("driver")]
        report = NodeInventoryReport(
            node_id=agent.node_id,
            cluster=cluster,
            reported_at=now,
            vendor=vendor,
            gpu_model=models.most_common(1)[0][0] if models else "",
            gpu_count=len(gpus),
            memory_mib=min(memories) if memories else None,
            driver=drivers[0] if drivers else "",
            serials=serials,
            gpus=gpus,
            agent_version=agent_version or "",
            mismatches=mismatches,
            mismatched=bool(mismatches),
        )
        NodeInventoryReport.objects.bulk_create(
            [report],
            update_conflicts=True,
            unique_fields=["node"],
            update_fields=[
                "cluster",
                "reported_at",
                "vendor",
                "gpu_model",
                "gpu_count",
                "memory_mib",
                "driver",
                "serials",
                "gpus",
                "agent_version",
                "mismatches",
                "mismatched",
            ],
        )
        provider_id = cluster.data_center.provider_id
        data = {"cluster": cluster.pk, "node": agent.node.index, "hostname": agent.hostname}
        if mismatches and (previous is None or previous.mismatches != mismatches):
            audit_record(
                action="listings.inventory_mismatch",
                obj=agent.node,
                organization_id=provider_id,
                data={**data, "mismatches": mismatches},
            )
            cluster_id, node_id = cluster.pk, agent.node_id
            transaction.on_commit(
                lambda: inventory_mismatched.send(
                    sender=inventory_report, cluster_id=cluster_id, node_id=node_id, mismatches=mismatches
                )
            )
        elif not mismatches and previous is not None and previous.mismatched:
            audit_record(action="listings.inventory_matched", obj=agent.node, organization_id=provider_id, data=data)
    report.node = agent.node
    return report


# --- heartbeats and outages ----------------------------------------------------------------------------------------


def heartbeat_verdict(gpus: list[dict], gpus_per_node: int) -> tuple[bool, dict]:
    """``(healthy, detail)``: unhealthy when a GPU reports alarm or critical, or fewer GPUs than the node has."""
    bad = sorted(gpu["index"] for gpu in gpus if gpu.get("health") in UNHEALTHY)
    detail = {"gpus": len(gpus)}
    if bad:
        detail["unhealthy_gpus"] = bad
    if len(gpus) < gpus_per_node:
        detail["missing_gpus"] = gpus_per_node - len(gpus)
    return not bad and len(gpus) >= gpus_per_node, detail


@retry_on_contention
def heartbeat_record(
    *, token: AgentToken, hostname: str, sequence: int, gpus: list[dict], now: dt.datetime | None = None
) -> NodeAgent:
    """Accept one heartbeat of ``hostname``'s node when ``sequence`` exceeds the last accepted one.

    Locks the node's ``NodeAgent`` row, so of two heartbeats with one sequence exactly one is accepted. Closes the
    node's open silence (or records the silence since its previous heartbeat when longer than ``SILENCE``), opens
    or closes its unhealthy outage. Raises ``Conflict`` 409 (``unknown_host``: report inventory first;
    ``replayed``: the sequence is not above the last one).
    """
    now = now or timezone.now()
    with transaction.atomic():
        agent = _bound_agent(token.cluster_id, hostname, lock=True) if isinstance(hostname, str) else None
        if agent is None:
            raise Conflict(
                gettext("This host is not bound to a node of the cluster: report its inventory first."),
                errors={"hostname": [gettext("Unknown host.")]},
                code="unknown_host",
            )
        if sequence <= agent.last_sequence:
            raise Conflict(
                gettext("Heartbeat replayed: its sequence is not above the last one accepted."),
                errors={"sequence": [gettext("Must be greater than %(last)s.") % {"last": agent.last_sequence}]},
                code="replayed",
            )
        gpus_per_node = Cluster.objects.filter(pk=token.cluster_id).values_list("gpus_per_node", flat=True).get()
        healthy, detail = heartbeat_verdict(gpus, gpus_per_node)
        previous = agent.last_heartbeat_at
        NodeAgent.objects.filter(pk=agent.pk).update(
            last_sequence=sequence, last_heartbeat_at=now, healthy=healthy, health_detail=detail, token=token
        )
        closed_silence = NodeOutage.objects.filter(
            node_id=agent.node_id, kind=NodeOutage.Kind.SILENT, ended_at__isnull=True
        ).update(ended_at=now)
        if not closed_silence and previous is not None and now - previous > SILENCE:
            NodeOutage.objects.create(
                node_id=agent.node_id, kind=NodeOutage.Kind.SILENT, started_at=previous, ended_at=now
            )
        open_unhealthy = NodeOutage.objects.filter(
            node_id=agent.node_id, kind=NodeOutage.Kind.UNHEALTHY, ended_at__isnull=True
        )
        if healthy:
            open_unhealthy.update(ended_at=now)
        elif not open_unhealthy.exists():
            NodeOutage.objects.create(
                node_id=agent.node_id, kind=NodeOutage.Kind.UNHEALTHY, started_at=now, detail=detail
            )
        agent.last_sequence, agent.last_heartbeat_at, agent.healthy, agent.health_detail = (
            sequence,
            now,
            healthy,
            detail,
        )
    return agent


def outages_open_silent(*, now: dt.datetime | None = None, batch: int = 500) -> int:
    """Open a silent outage, from its last heartbeat, for every bound node quiet for more than ``SILENCE`` that has
    none open (the periodic sweep; a second run is a no-op). Rows another transaction holds (a heartbeat being
    recorded) are skipped. Returns how many outages it opened."""
    now = now or timezone.now()
    with transaction.atomic():
        quiet = list(
            NodeAgent.objects.select_for_update(skip_locked=True)
            .filter(last_heartbeat_at__lt=now - SILENCE)
            .exclude(
                node_id__in=NodeOutage.objects.filter(kind=NodeOutage.Kind.SILENT, ended_at__isnull=True).values(
                    "node_id"
                )
            )
            .order_by("pk")
            .values_list("node_id", "last_heartbeat_at")[:batch]
        )
        created = NodeOutage.objects.bulk_create(
            [NodeOutage(node_id=node_id, kind=NodeOutage.Kind.SILENT, started_at=last) for node_id, last in quiet],
            ignore_conflicts=True,
        )
    return len(created)
