"""The audit log becomes a transparency log (issue 24): no global lock on insert; a sequencer appends committed events
to an RFC 9162 Merkle tree and signs tree heads.

- Drops the hash chain: the ``audit_event_chain`` trigger (and with it ``pg_advisory_xact_lock(7263001)``, held by
  every audited write until COMMIT), its functions and the ``seq`` / ``prev_hash`` / ``hash`` columns. The
  ``audit_event_append_only`` trigger (UPDATE and DELETE refused) stays.
- ``txid``: defaults to the inserting transaction's id (``pg_current_xact_id()``, no trigger); events that existed
  before get this migration's id, so the first sequencer run after it appends them, in id order.
- ``organization_id`` becomes a foreign key to ``accounts.Organization`` for the ORM only (``db_constraint=False``:
  the column and its index stay as they are; no constraint check, and no row lock, at each audited commit).
- ``AuditLeaf``, ``MerkleNode``, ``TreeHead``: append-only as the events are (UPDATE and DELETE refused);
  ``SequencerState``: the sequencer's one row.

TRUNCATE is not refused by a trigger (Django's test flush truncates every table): in production the application's
database role should not own these tables (grant it INSERT and SELECT only), which takes TRUNCATE away too.
"""

import audit.models
import django.db.models.deletion
import django.db.models.functions.text
import django.db.models.lookups
from django.conf import settings
from django.db import migrations, models

DROP_CHAIN_SQL = """
DROP TRIGGER IF EXISTS audit_event_chain ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_chain();
DROP FUNCTION IF EXISTS audit_event_digest(text, bigint, timestamptz, bigint, bigint, text, text, text, jsonb, inet);
"""

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% on % refused)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_leaf_append_only BEFORE UPDATE OR DELETE ON audit_auditleaf
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_node_append_only BEFORE UPDATE OR DELETE ON audit_merklenode
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_head_append_only BEFORE UPDATE OR DELETE ON audit_treehead
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
INSERT INTO audit_sequencerstate (id, horizon) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
"""

NO_APPEND_ONLY_SQL = """
DROP TRIGGER IF EXISTS audit_head_append_only ON audit_treehead;
DROP TRIGGER IF EXISTS audit_node_append_only ON audit_merklenode;
DROP TRIGGER IF EXISTS audit_leaf_append_only ON audit_auditleaf;
DROP FUNCTION IF EXISTS audit_log_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("audit", "0005_anomalyflag_to_oversight"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # --- the hash chain goes ----------------------------------------------------------------------------------
        migrations.RunSQL(DROP_CHAIN_SQL, migrations.RunSQL.noop),
        migrations.RemoveField(model_name="auditevent", name="hash"),
        migrations.RemoveField(model_name="auditevent", name="prev_hash"),
        migrations.RemoveField(model_name="auditevent", name="seq"),
        # --- organization: the same column, now a foreign key -------------------------------------------------
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="auditevent", name="organization_id"),
                migrations.AddField(
                    model_name="auditevent",
                    name="organization",
                    field=models.ForeignKey(
                        blank=True,
                        db_column="organization_id",
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.organization",
                    ),
                ),
            ],
            database_operations=[],
        ),
        # --- txid, stamped by the database ------------------------------------------------------------------------
        migrations.AddField(
            model_name="auditevent",
            name="txid",
            field=models.BigIntegerField(db_default=audit.models.CurrentTransactionId(), editable=False),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["txid", "id"], name="audit_event_txid_idx"),
        ),
        # --- the Merkle tree ----------------------------------------------------------------------------------
        migrations.CreateModel(
            name="AuditLeaf",
            fields=[
                ("leaf_index", models.BigIntegerField(primary_key=True, serialize=False)),
                ("leaf_hash", models.BinaryField(max_length=32)),
                (
                    "event",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT, related_name="leaf", to="audit.auditevent"
                    ),
                ),
            ],
            options={
                "ordering": ["leaf_index"],
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("leaf_index__gte", 0)), name="auditleaf_index_not_negative"),
                    models.CheckConstraint(
                        condition=django.db.models.lookups.Exact(django.db.models.functions.text.Length("leaf_hash"), 32),
                        name="auditleaf_hash_size",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="MerkleNode",
            fields=[
                ("pk", models.CompositePrimaryKey("level", "index", blank=True, editable=False, primary_key=True, serialize=False)),
                ("level", models.PositiveSmallIntegerField()),
                ("index", models.BigIntegerField()),
                ("hash", models.BinaryField(max_length=32)),
            ],
            options={
                "ordering": ["level", "index"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("level__gte", 1), ("level__lte", 63)), name="merklenode_level_range"
                    ),
                    models.CheckConstraint(condition=models.Q(("index__gte", 0)), name="merklenode_index_not_negative"),
                    models.CheckConstraint(
                        condition=django.db.models.lookups.Exact(django.db.models.functions.text.Length("hash"), 32),
                        name="merklenode_hash_size",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="TreeHead",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("tree_size", models.BigIntegerField(unique=True)),
                ("root_hash", models.BinaryField(max_length=32)),
                ("timestamp", models.DateTimeField()),
                ("signature", models.CharField(max_length=128)),
                ("key_id", models.CharField(max_length=64)),
            ],
            options={
                "ordering": ["-tree_size"],
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("tree_size__gte", 0)), name="treehead_size_not_negative"),
                    models.CheckConstraint(
                        condition=django.db.models.lookups.Exact(
                            django.db.models.functions.text.Length("root_hash"), 32
                        ),
                        name="treehead_root_size",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="SequencerState",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("horizon", models.BigIntegerField(default=0)),
                ("updated_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "constraints": [models.CheckConstraint(condition=models.Q(("id", 1)), name="sequencerstate_one_row")],
            },
        ),
        migrations.RunSQL(APPEND_ONLY_SQL, NO_APPEND_ONLY_SQL),
    ]
