"""The audit log: append-only events, and the Merkle tree the sequencer builds over them (RFC 9162, as Certificate
Transparency and Trillian do).

- ``AuditEvent``: who did what to which object, inserted in the same transaction as the change, with no lock (a
  plain INSERT). Its ``txid`` column defaults to the inserting transaction's id (``pg_current_xact_id()``), which
  the sequencer uses to take only events whose transaction has ended; a trigger refuses UPDATE and DELETE.
- ``AuditLeaf``: the event's place in the log (``leaf_index``, 0, 1, 2 … without gaps) and its leaf hash.
- ``MerkleNode``: the hash of every complete perfect subtree above the leaves (level ≥ 1; level 0 is the leaves).
- ``TreeHead``: a signed ``{tree_size, root_hash, timestamp}`` after each sequencer batch; old heads are kept.
- ``SequencerState``: one row, the sequencer's lock (``FOR UPDATE SKIP LOCKED``) and its ``horizon``.

Leaves, nodes and heads are append-only too (the sequencer only inserts them); ``manage.py verify_audit``
recomputes all of them from the events. See ``audit.sequencer`` for the rule that orders the log.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import Exact

HASH_BYTES = 32


class CurrentTransactionId(models.Func):
    """``pg_current_xact_id()`` as a bigint: the top-level id of the transaction that evaluates it (also inside a
    savepoint); as a column default, the id of the transaction that inserted the row."""

    template = "(pg_current_xact_id()::text::bigint)"
    output_field = models.BigIntegerField()


class AuditEvent(models.Model):
    """One recorded action. Never updated or deleted (``audit_event_append_only`` trigger); its leaf in the log is
    a separate row (``AuditLeaf``), written by the sequencer after the event's transaction commits."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A string reference: audit imports no app (accounts sits above it). No constraint in the database: its check
    # at each commit locks the organization's row (FOR KEY SHARE, waiting behind any FOR UPDATE of it) and cost
    # about 8 % of audited-insert throughput (bench/audit.py); the services write ids they have just read.
    organization = models.ForeignKey(
        "accounts.Organization",
        db_column="organization_id",
        db_constraint=False,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    # The inserting transaction's top-level id (xid8 as bigint): the database's default, never given by the code
    # (an INSERT that names another value only delays or loses that event's own place in the log, which
    # ``verify_audit`` reports as pending).
    txid = models.BigIntegerField(db_default=CurrentTransactionId(), editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["txid", "id"], name="audit_event_txid_idx"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"


class AuditLeaf(models.Model):
    """Event ``event`` is leaf ``leaf_index`` of the log; ``leaf_hash`` = SHA-256(0x00 ‖ the event's canonical
    JSON) (``audit.leaves``)."""

    leaf_index = models.BigIntegerField(primary_key=True)
    event = models.OneToOneField(AuditEvent, on_delete=models.PROTECT, related_name="leaf")
    leaf_hash = models.BinaryField(max_length=HASH_BYTES)

    class Meta:
        ordering = ["leaf_index"]
        constraints = [
            models.CheckConstraint(condition=models.Q(leaf_index__gte=0), name="auditleaf_index_not_negative"),
            models.CheckConstraint(condition=Exact(Length("leaf_hash"), HASH_BYTES), name="auditleaf_hash_size"),
        ]

    def __str__(self):
        return f"leaf {self.leaf_index} (event {self.event_id})"


class MerkleNode(models.Model):
    """The hash of the perfect subtree of ``2**level`` leaves starting at leaf ``index * 2**level`` (the store
    ``audit.merkle`` reads roots and proofs from; level 0 lives in ``AuditLeaf``)."""

    pk = models.CompositePrimaryKey("level", "index")  # one index: a row per event, written by the sequencer
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=HASH_BYTES)

    class Meta:
        ordering = ["level", "index"]
        constraints = [
            models.CheckConstraint(condition=models.Q(level__gte=1, level__lte=63), name="merklenode_level_range"),
            models.CheckConstraint(condition=models.Q(index__gte=0), name="merklenode_index_not_negative"),
            models.CheckConstraint(condition=Exact(Length("hash"), HASH_BYTES), name="merklenode_hash_size"),
        ]

    def __str__(self):
        return f"node level {self.level} index {self.index}"


class TreeHead(models.Model):
    """A signed tree head: Ed25519 ``signature`` (base64) by key ``key_id`` over the canonical JSON of
    ``{"root_hash": hex, "timestamp": "…Z", "tree_size": n}`` (``audit.signing``)."""

    tree_size = models.BigIntegerField(unique=True)
    root_hash = models.BinaryField(max_length=HASH_BYTES)
    timestamp = models.DateTimeField()
    signature = models.CharField(max_length=128)
    key_id = models.CharField(max_length=64)

    class Meta:
        ordering = ["-tree_size"]
        constraints = [
            models.CheckConstraint(condition=models.Q(tree_size__gte=0), name="treehead_size_not_negative"),
            models.CheckConstraint(condition=Exact(Length("root_hash"), HASH_BYTES), name="treehead_root_size"),
        ]

    def __str__(self):
        return f"tree head {self.tree_size}"


class SequencerState(models.Model):
    """The sequencer's one row (``id`` 1): locked ``FOR UPDATE SKIP LOCKED`` by the one active run, and its
    ``horizon``: every event whose ``txid`` is below it has a leaf (so a run reads only events at or above it)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    horizon = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="sequencerstate_one_row")]

    def __str__(self):
        return f"audit sequencer (horizon {self.horizon})"
