"""Tamper-evident audit log: the database states when and who, and chains rows per organization.

A BEFORE INSERT trigger ignores what the caller passed for created_at and the actor: it takes
now() and the transaction's `app.actor_id` / `app.actor_label` settings. It then locks the
organization's chain head, numbers the row after the head and seals it with
row_hash = sha256(canonical row text, including prev_hash = the head's hash). Concurrent writers
of one organization queue on the head row, so the chain order is the audit_id order.
`flask audit verify` recomputes every link. Existing rows are chained here, oldest first.

Revision ID: 0008_audit_chain
Revises: 0007_credit_hardening
Create Date: 2026-11-29
"""

from alembic import op

from portal.schema import app_role, grant_app, tenant_rls

revision = "0008_audit_chain"
down_revision = "0007_credit_hardening"
branch_labels = None
depends_on = None

# The canonical text of a row is a JSON array of its columns (jsonb's text form is canonical:
# keys ordered, no insignificant spaces), created_at in UTC with microseconds.
ROW_HASH = """
CREATE FUNCTION audit_log_row_hash(r audit_log) RETURNS TEXT
LANGUAGE sql STABLE SET search_path = pg_catalog, public AS $$
    SELECT encode(sha256(convert_to(jsonb_build_array(
        r.organization_id, r.audit_id, r.actor_id, r.actor_label, r.action, r.entity_type,
        r.entity_id, r.before, r.after, r.request_id,
        to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        r.prev_hash
    )::text, 'UTF8')), 'hex')
$$
"""

# SECURITY DEFINER: the chain heads belong to the owner; the app role can only read them.
SEAL = """
CREATE FUNCTION audit_log_seal() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    head_hash TEXT;
BEGIN
    NEW.created_at := now();
    NEW.actor_id := nullif(current_setting('app.actor_id', true), '')::uuid;
    NEW.actor_label := coalesce(nullif(current_setting('app.actor_label', true), ''), 'system');
    SELECT last_hash INTO head_hash FROM audit_chain_heads
        WHERE organization_id = NEW.organization_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO audit_chain_heads (organization_id) VALUES (NEW.organization_id)
            ON CONFLICT (organization_id) DO NOTHING;
        SELECT last_hash INTO head_hash FROM audit_chain_heads
            WHERE organization_id = NEW.organization_id FOR UPDATE;
    END IF;
    -- Numbered under the head's lock, so audit_id order is the chain order.
    NEW.audit_id := nextval(pg_get_serial_sequence('public.audit_log', 'audit_id'));
    NEW.prev_hash := head_hash;
    NEW.row_hash := audit_log_row_hash(NEW);
    UPDATE audit_chain_heads SET last_audit_id = NEW.audit_id, last_hash = NEW.row_hash
        WHERE organization_id = NEW.organization_id;
    RETURN NEW;
END $$
"""

# Existing rows, oldest first per organization (run by the owner with RLS lifted for the DDL
# transaction only, and the append-only trigger off while the new columns are filled).
BACKFILL = """
DO $$
DECLARE
    r audit_log;
    previous TEXT;
    current_org UUID;
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY organization_id, audit_id LOOP
        IF current_org IS DISTINCT FROM r.organization_id THEN
            current_org := r.organization_id;
            previous := NULL;
        END IF;
        r.prev_hash := previous;
        r.row_hash := audit_log_row_hash(r);
        UPDATE audit_log SET prev_hash = r.prev_hash, row_hash = r.row_hash
            WHERE organization_id = r.organization_id AND audit_id = r.audit_id;
        previous := r.row_hash;
    END LOOP;
    INSERT INTO audit_chain_heads (organization_id, last_audit_id, last_hash)
    SELECT DISTINCT ON (organization_id) organization_id, audit_id, row_hash
    FROM audit_log ORDER BY organization_id, audit_id DESC;
END $$
"""


def upgrade():
    op.execute("ALTER TABLE audit_log ADD COLUMN prev_hash TEXT, ADD COLUMN row_hash TEXT")
    op.execute(
        """
        CREATE TABLE audit_chain_heads (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            last_audit_id BIGINT,
            last_hash TEXT,
            PRIMARY KEY (organization_id)
        )
        """
    )
    tenant_rls("audit_chain_heads")
    # `flask audit verify` as the owner checks every organization: read-only, owner only.
    for table in ("audit_log", "audit_chain_heads"):
        op.execute(
            f"CREATE POLICY {table}_verify ON {table} FOR SELECT TO CURRENT_USER USING (true)"
        )
    op.execute(ROW_HASH)
    op.execute(SEAL)
    op.execute("REVOKE ALL ON FUNCTION audit_log_seal() FROM PUBLIC")

    op.execute("ALTER TABLE audit_log NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE audit_chain_heads NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
    op.execute(BACKFILL)
    op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
    op.execute("ALTER TABLE audit_log FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE audit_chain_heads FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE audit_log ALTER COLUMN row_hash SET NOT NULL")

    op.execute(
        "CREATE TRIGGER audit_log_seal BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_seal()"
    )
    # Append-only for the app role: no privilege to change rows (the trigger refuses as well).
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {app_role()}")
    grant_app("audit_chain_heads", "SELECT")


def downgrade():
    op.execute("DROP TRIGGER audit_log_seal ON audit_log")
    op.execute("DROP FUNCTION audit_log_seal()")
    op.execute("DROP TABLE audit_chain_heads")
    op.execute("DROP POLICY audit_log_verify ON audit_log")
    op.execute("DROP FUNCTION audit_log_row_hash(audit_log)")
    op.execute("ALTER TABLE audit_log DROP COLUMN row_hash, DROP COLUMN prev_hash")
