"""The audit sequencer: appends committed events to the log's Merkle tree and signs a tree head after each batch.

Audited writes insert their ``AuditEvent`` with no lock at all; this is the one writer of the tree (a Celery beat
task every few seconds, ``audit.tasks.sequence``; also ``manage.py sequence_audit``).

**Which events, in which order (the rule).** A trigger stamps each event with ``txid``, the top-level id of the
transaction that inserted it (``pg_current_xact_id()``). Ids are handed out in increasing order, and a transaction
gets its id before its first write, so before it can insert an event. A run takes a snapshot
(``pg_current_snapshot()``) and computes the **bound**: the smallest id among the transactions of this database
still running in that snapshot, or the snapshot's ``xmax`` (the next id to be handed out) when none runs. Every
transaction with an id below the bound has ended — committed, so its events are visible to the run, or rolled back,
so they never will be — and every transaction that has not ended, or not started, has an id ``>= bound``. The run
appends the events with ``txid < bound`` that have no leaf yet, ordered by ``(txid, id)``: transaction order, and
insertion order within one transaction (whose events thus stay together). Hence:

- nothing is skipped: an event whose transaction is still running when the run looks has ``txid >= bound``, so it
  is left for a later run, which finds it by the same rule once its transaction ends (a slow transaction delays the
  events behind it, it never loses any, nor its own);
- nothing is appended twice (a leaf per event: ``AuditLeaf.event`` is unique, and so is ``leaf_index``), and the log
  is the same whatever the timing of runs: the leaves are in ``(txid, id)`` order overall;
- ids are not commit order, and neither is ``txid``; what matters is that a run never appends an event while an
  event that belongs before it in this order could still commit.

Running transactions of *other* databases of the same server cannot insert our events, so they do not hold the
bound back: a running id counts as another database's only when ``pg_stat_activity`` (read after the snapshot) shows
it in another database; an id it does not show (ended meanwhile, or hidden from an unprivileged role) counts as
ours, which only delays. The plain ``pg_snapshot_xmin`` would be safe too, but a long transaction anywhere on the
server (another application, a test run) would stall the log.

Reading stays cheap: ``SequencerState.horizon`` (every event with ``txid`` below it has a leaf) bounds the scan;
it moves to the run's bound once a batch drains everything below it. The sequencer's own transaction has an id too
(from its row lock) and counts as running (it is the newest: harmless). Events of its own transaction, if it has
any (tests run everything in one transaction), are appended as well, since they commit or roll back together with
their leaves.

A cluster whose transaction ids restart (a logical dump restored into a new cluster; ``pg_upgrade`` keeps them)
would see a horizon ahead of every id: the run notices (horizon > ``xmax``) and rescans from 0. Before such a
restore, run the sequencer until no event is pending, or the events pending then wait for the new ids to pass
theirs.

**Single active, safe to kill.** Each batch is one transaction that starts by locking the one ``SequencerState``
row ``FOR UPDATE SKIP LOCKED``: a second run at the same time finds it locked and does nothing (it returns
``active=False``). A batch appends its leaves, the ``MerkleNode`` rows that complete, and a signed ``TreeHead``,
then commits; a run killed or failing mid-batch rolls all of that back, and the next run starts again from the
last head. Before extending the tree, a batch checks that the stored tree still has the newest head's size and root,
so it never signs on top of a tree that was altered (``manage.py verify_audit`` says where).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import keys, merkle, signing
from audit.models import TreeHead
from audit.tree import LEAF_COLUMNS_SQL, leaf_of_row, run_with_store, stored_tree_size, timestamp_text

logger = logging.getLogger(__name__)

_LOCK_SQL = "SELECT horizon FROM audit_sequencerstate WHERE id = 1 FOR UPDATE SKIP LOCKED"
_ENSURE_STATE_SQL = "INSERT INTO audit_sequencerstate (id, horizon) VALUES (1, 0) ON CONFLICT (id) DO NOTHING"
_SNAPSHOT_SQL = (
    "SELECT pg_snapshot_xmax(s)::text::bigint, ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(s) AS x), "
    "pg_current_xact_id_if_assigned()::text::bigint FROM pg_current_snapshot() AS s"
)
# Ids (32-bit) of transactions running in other databases of the server; read after the snapshot, afresh.
_OTHER_DATABASES_SQL = (
    "SELECT backend_xid::text::bigint FROM pg_stat_activity "
    "WHERE backend_xid IS NOT NULL AND datname IS NOT NULL AND datname <> current_database()"
)
_XID_MODULUS = 1 << 32
# A batch's rows in one statement per table: ids and indices as arrays, the 32-byte hashes as one bytea.
_INSERT_LEAVES_SQL = """
INSERT INTO audit_auditleaf (leaf_index, event_id, leaf_hash)
SELECT %(first)s + t.n - 1, t.event_id, substring(%(hashes)s::bytea FROM ((t.n - 1) * 32 + 1)::int FOR 32)
FROM unnest(%(events)s::bigint[]) WITH ORDINALITY AS t(event_id, n)
"""
_INSERT_NODES_SQL = """
INSERT INTO audit_merklenode (level, "index", hash)
SELECT t.level, t.index, substring(%(hashes)s::bytea FROM ((t.n - 1) * 32 + 1)::int FOR 32)
FROM unnest(%(levels)s::smallint[], %(indexes)s::bigint[]) WITH ORDINALITY AS t(level, index, n)
"""
_PENDING_SQL = f"""
SELECT e.txid, {LEAF_COLUMNS_SQL}
FROM audit_auditevent e
WHERE e.txid >= %(horizon)s AND (e.txid < %(bound)s OR e.txid = %(own)s)
  AND NOT EXISTS (SELECT 1 FROM audit_auditleaf l WHERE l.event_id = e.id)
ORDER BY e.txid, e.id
LIMIT %(limit)s
"""  # noqa: S608 - LEAF_COLUMNS_SQL is a constant


class SequencerError(RuntimeError):
    """The stored tree does not match its newest signed head: the sequencer refuses to extend it."""


@dataclass(frozen=True)
class SequencerRun:
    appended: int  # events appended by this run
    tree_size: int  # the log's size after it
    active: bool  # False when another run held the lock and this one did nothing


def audit_sequence(*, batch_size: int | None = None, max_batches: int | None = None) -> SequencerRun:
    """Append every committed event not in the log yet (see the module docstring), ``batch_size`` events per
    transaction and signed head (``AUDIT_SEQUENCER_BATCH``), at most ``max_batches`` batches. Returns what it did;
    raises ``SequencerError`` when the stored tree disagrees with its newest head, ``ImproperlyConfigured`` without
    a signing key."""
    batch_size = batch_size or settings.AUDIT_SEQUENCER_BATCH
    appended = batches = 0
    tree_size = None
    while max_batches is None or batches < max_batches:
        outcome = _sequence_batch(batch_size)
        if outcome is None:  # another run is active: it appends what this one would have
            break
        count, tree_size = outcome
        appended += count
        batches += 1
        if count < batch_size:
            break
    if tree_size is None:
        tree_size = stored_tree_size()
    return SequencerRun(appended=appended, tree_size=tree_size, active=batches > 0)


def _sequence_batch(batch_size: int) -> tuple[int, int] | None:
    """One batch in one transaction: ``(events appended, tree size)``, or None when another run holds the lock."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_ENSURE_STATE_SQL)
        cursor.execute(_LOCK_SQL)
        locked = cursor.fetchone()
        if locked is None:
            return None
        horizon = locked[0]
        bound, xmax, own = current_bound(cursor)
        if horizon > xmax:
            logger.warning("audit sequencer: horizon %s is ahead of the cluster's transaction ids; rescanning", horizon)
            horizon = 0
        head = TreeHead.objects.order_by("-tree_size").first()
        size = _checked_size(head)
        cursor.execute(_PENDING_SQL, {"horizon": horizon, "bound": bound, "own": own, "limit": batch_size})
        pending = cursor.fetchall()
        if pending or head is None:
            size = _append(size, pending, head)
        # Drained: everything below the bound has a leaf. Cut short by the limit: the rest starts at the last txid read.
        new_horizon = bound if len(pending) < batch_size else min(pending[-1][0], bound)
        cursor.execute(
            "UPDATE audit_sequencerstate SET horizon = %s, updated_at = %s WHERE id = 1",
            [max(horizon, new_horizon), timezone.now()],
        )
    if pending:
        logger.info("audit sequencer: appended %d events, tree size %d", len(pending), size)
    return len(pending), size


def current_bound(cursor) -> tuple[int, int, int | None]:
    """``(bound, xmax, own transaction id or None)`` now (see the module docstring): every event with ``txid`` below
    the bound is final."""
    cursor.execute(_SNAPSHOT_SQL)
    xmax, running, own = cursor.fetchone()
    cursor.execute("SELECT pg_stat_clear_snapshot()")  # pg_stat_activity as it is now, not as first read
    cursor.execute(_OTHER_DATABASES_SQL)
    elsewhere = {row[0] for row in cursor.fetchall()}
    ours = [xid for xid in running if xid % _XID_MODULUS not in elsewhere]
    if own is not None:  # this transaction is running too: a later statement of it may still insert events
        ours.append(own)
    return min([*ours, xmax]), xmax, own


def _checked_size(head: TreeHead | None) -> int:
    """The stored tree's size, after checking it is the newest head's size and that its root is the head's."""
    size = stored_tree_size()
    head_size = head.tree_size if head is not None else 0
    if size != head_size:
        raise SequencerError(
            f"the log holds {size} leaves but its newest signed head has tree size {head_size}: run verify_audit"
        )
    if head is not None and size > 0:
        stored_root = run_with_store(lambda get: merkle.root(size, get))
        if stored_root != bytes(head.root_hash):
            raise SequencerError(f"the stored tree of size {size} no longer has its signed root: run verify_audit")
    return size


def _append(size: int, pending: list[tuple], head: TreeHead | None) -> int:
    """Append ``pending`` event rows as leaves ``size …``, store the subtrees they complete and a signed head."""
    leaf_hashes = [merkle.leaf_hash(leaf_of_row(row[1:])) for row in pending]
    new_rows = run_with_store(lambda get: merkle.subtree_hashes_to_store(size, leaf_hashes, get))
    nodes = [(level, index, digest) for level, index, digest in new_rows if level > 0]
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_LEAVES_SQL,
            {"first": size, "events": [row[1] for row in pending], "hashes": b"".join(leaf_hashes)},
        )
        if nodes:
            cursor.execute(
                _INSERT_NODES_SQL,
                {
                    "levels": [level for level, _, _ in nodes],
                    "indexes": [index for _, index, _ in nodes],
                    "hashes": b"".join(digest for _, _, digest in nodes),
                },
            )
    new_size = size + len(pending)
    known = {(level, index): digest for level, index, digest in new_rows}
    root = run_with_store(lambda get: merkle.root(new_size, get), known)
    _sign_head(new_size, root, head)
    return new_size


def _sign_head(tree_size: int, root: bytes, previous: TreeHead | None) -> TreeHead:
    """Sign and store the head of ``tree_size`` leaves; timestamps never go back (a clock step stays monotonic)."""
    now = timezone.now()
    if previous is not None and previous.timestamp > now:
        now = previous.timestamp
    private_key = keys.signing_key()
    root_hex = root.hex()
    signature = signing.sign_tree_head(private_key, tree_size, root_hex, timestamp_text(now))
    return TreeHead.objects.create(
        tree_size=tree_size, root_hash=root, timestamp=now, signature=signature, key_id=signing.key_id(private_key)
    )
