"""Hash chain and append-only enforcement for audit events, in the database so no code path can skip them.

TRUNCATE is not refused by a trigger: Django's test flush truncates every table. In production the application's
database role should not own the table (grant it INSERT and SELECT only), which also takes TRUNCATE away.
"""

from django.db import migrations

CHAIN_SQL = r"""
CREATE OR REPLACE FUNCTION audit_event_digest(
    prev_hash text, seq bigint, created_at timestamptz, actor_id bigint, organization_id bigint, action text,
    object_type text, object_id text, data jsonb, ip inet
) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(concat_ws('|',
        prev_hash, seq::text,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
        coalesce(actor_id::text, ''), coalesce(organization_id::text, ''),
        action, object_type, object_id, data::text, coalesce(host(ip), '')
    ), 'UTF8')), 'hex')
$$;

CREATE OR REPLACE FUNCTION audit_event_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    -- One chain: serialise appends until this transaction ends. Each statement below takes a fresh snapshot
    -- (READ COMMITTED), so it sees the event the previous lock holder committed.
    PERFORM pg_advisory_xact_lock(7263001);
    SELECT e.seq, e.hash INTO last_seq, last_hash FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, '');
    NEW.hash := audit_event_digest(NEW.prev_hash, NEW.seq, NEW.created_at, NEW.actor_id, NEW.organization_id,
                                   NEW.action, NEW.object_type, NEW.object_id, NEW.data, NEW.ip);
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_event_chain BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_chain();
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change();
"""

REVERSE_SQL = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_event_chain ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_refuse_change();
DROP FUNCTION IF EXISTS audit_event_chain();
DROP FUNCTION IF EXISTS audit_event_digest(text, bigint, timestamptz, bigint, bigint, text, text, text, jsonb, inet);
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_seq")]
    operations = [migrations.RunSQL(CHAIN_SQL, REVERSE_SQL)]
