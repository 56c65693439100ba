"""Reads for the provider agent (issue 20): tokens, node bindings, inventory, outages, declared serials."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.db import connection
from django.db.models import Prefetch, QuerySet

from listings.hardware import normalise_serial
from listings.models import (
    AgentToken,
    Cluster,
    Node,
    NodeInventoryReport,
    NodeOutage,
    ProvenanceDeclaration,
)

TOKEN_PREFIX = "gpuxa_"  # noqa: S105 - a marker every agent token starts with, not a secret


def agent_token_hash(raw: str) -> str:
    """Agent tokens are stored as the SHA-256 (hex) of the token text."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def agent_token_for(raw: str) -> AgentToken | None:
    """The active token whose text is ``raw`` (with its cluster), or None: unknown, malformed or revoked."""
    if not raw or len(raw) > 200 or not raw.startswith(TOKEN_PREFIX):
        return None
    return (
        AgentToken.objects.select_related("cluster")
        .filter(token_hash=agent_token_hash(raw), revoked_at__isnull=True)
        .first()
    )


def cluster_tokens(cluster: Cluster | int) -> QuerySet[AgentToken]:
    """A cluster's tokens, active first, newest first."""
    return (
        AgentToken.objects.filter(cluster=cluster)
        .select_related("created_by", "revoked_by")
        .order_by("-revoked_at", "-created_at", "-id")
    )


def cluster_nodes(cluster: Cluster | int) -> QuerySet[Node]:
    """A cluster's nodes with their agent binding, latest inventory and open outages (for the cluster's agent page
    and API)."""
    return (
        Node.objects.filter(cluster=cluster)
        .select_related("agent", "inventory")
        .prefetch_related(Prefetch("outages", queryset=NodeOutage.objects.filter(ended_at__isnull=True)))
        .order_by("index")
    )


def cluster_hardware_mismatched(cluster: Cluster | int) -> bool:
    """True when a node of ``cluster`` last reported hardware other than the cluster declared: vouchers do not pay
    for its listings (``vouchers.selectors.listing_reviewed``)."""
    cluster_id = cluster.pk if isinstance(cluster, Cluster) else cluster
    return NodeInventoryReport.objects.filter(cluster_id=cluster_id, mismatched=True).exists()


def mismatched_cluster_ids(cluster_ids: Iterable[int]) -> set[int]:
    """The clusters of ``cluster_ids`` with a mismatching node (one query)."""
    return set(
        NodeInventoryReport.objects.filter(cluster_id__in=set(cluster_ids), mismatched=True)
        .values_list("cluster_id", flat=True)
        .distinct()
    )


def serials_declared_elsewhere(serials: Iterable[str], *, cluster_id: int | None = None) -> list[str]:
    """The serials among ``serials`` that a provenance declaration of another cluster lists (compared normalised:
    upper case, without spaces; declarations keep them as typed)."""
    wanted = sorted({normalise_serial(s) for s in serials if s and str(s).strip()})
    if not wanted:
        return []
    table = ProvenanceDeclaration._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT n FROM "  # noqa: S608 - the table name comes from the model's metadata
            f"{table} d CROSS JOIN LATERAL unnest(d.serial_numbers) AS s(serial) "
            "CROSS JOIN LATERAL upper(regexp_replace(s.serial, '\\s', '', 'g')) AS n "
            "WHERE d.cluster_id IS DISTINCT FROM %s AND n = ANY(%s) ORDER BY n",
            [cluster_id, wanted],
        )
        return [row[0] for row in cursor.fetchall()]


def serials_reported_elsewhere(serials: Iterable[str], *, cluster_id: int) -> list[str]:
    """The serials among ``serials`` (normalised) that a node of another cluster last reported."""
    wanted = {normalise_serial(s) for s in serials if s}
    if not wanted:
        return []
    rows = (
        NodeInventoryReport.objects.exclude(cluster_id=cluster_id)
        .filter(serials__overlap=sorted(wanted))
        .values_list("serials", flat=True)
    )
    return sorted({serial for row in rows for serial in row} & wanted)
