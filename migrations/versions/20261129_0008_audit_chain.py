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

from portal.schema import (
    AUDIT_SEAL_ONE_CHAIN,
    app_role,
    audit_chains_rebuild,
    grant_app,
    tenant_rls,
)

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
    op.execute(AUDIT_SEAL_ONE_CHAIN)
    op.execute("REVOKE ALL ON FUNCTION audit_log_seal() FROM PUBLIC")

    audit_chains_rebuild()
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
