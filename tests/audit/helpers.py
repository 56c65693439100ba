"""Helpers for the audit log's tests: an independent RFC 9162 implementation (straight from the RFC's recursive
definitions, sharing no code with ``audit.merkle``), the sequencer run to completion, and tampering as the table owner.
"""

from __future__ import annotations

import hashlib
import time

from django.db import connection

from audit.models import AuditEvent
from audit.sequencer import audit_sequence, current_bound
from audit.tree import event_leaves

# --- RFC 9162 §2.1, as written ------------------------------------------------------------------------------------


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of §2.1.1."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = _k(n)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of §2.1.3.1."""
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def proof(m: int, leaves: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of §2.1.4.1 (0 < m < n)."""
    return _subproof(m, leaves, True)


def _subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], b), mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), mth(leaves[:k])]


# --- the stored log -----------------------------------------------------------------------------------------------


def log_leaves() -> list[bytes]:
    """The log's leaves in leaf order, recomputed from the events (the truth the tree must commit to)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT event_id FROM audit_auditleaf ORDER BY leaf_index")
        ids = [row[0] for row in cursor.fetchall()]
    leaves = event_leaves(ids)
    return [leaves[event_id] for event_id in ids]


def pending_events() -> int:
    """Committed events (visible to this connection) that have no leaf."""
    return AuditEvent.objects.filter(leaf__isnull=True).count()


def sequence_all(*, timeout: float = 120) -> None:
    """Run the sequencer until every event this connection sees is in the log. Transaction ids are cluster-wide: a
    transaction of another database on the same server (another test run) holds the sequencer back until it ends."""
    deadline = time.monotonic() + timeout
    while True:
        audit_sequence()
        if pending_events() == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{pending_events()} events still not sequenced after {timeout} s")
        time.sleep(0.05)


def wait_until_sequenceable(*, timeout: float = 120) -> None:
    """Wait until the sequencer may append every committed event: until no transaction of this database older than
    the newest event's is still running (``audit.sequencer.current_bound``)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT coalesce(max(txid), 0) FROM audit_auditevent")
            newest = cursor.fetchone()[0]
            if newest < current_bound(cursor)[0]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"older transactions still running after {timeout} s")
            time.sleep(0.05)


def tamper(table: str, sql: str, params=()) -> None:
    """Change rows of an append-only audit table as its owner can: with its triggers disabled for the statement."""
    with connection.cursor() as cursor:
        # ALTER TABLE refuses to run while deferred checks (foreign keys) of the transaction are pending: run them.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def audit_log_failures() -> list[str]:
    """Append every committed event to the log (``sequence_all``), then check the whole log: ``[]`` when intact (what
    the hash chain's ``audit_chain_breaks() == []`` asserted before issue 24)."""
    from audit.integrity import audit_log_check

    sequence_all()
    return audit_log_check().failures
