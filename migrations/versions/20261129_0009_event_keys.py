"""Per-organization event signing keys, looked up by key id through one narrow function.

The ingestion endpoint learns the organization only from a verified signature, so it cannot
read event_keys under RLS before it knows which key signed. event_key_lookup() is the reviewed
path: given a key id it returns that active key's organization and secret, nothing else. The
app role may create and revoke its own organization's keys (RLS) but has no SELECT on `secret`.

Revision ID: 0009_event_keys
Revises: 0008_audit_chain
Create Date: 2026-11-29
"""

from alembic import op

from portal.schema import app_role, grant_app, tenant_rls

revision = "0009_event_keys"
down_revision = "0008_audit_chain"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE event_keys (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            key_id UUID NOT NULL DEFAULT gen_random_uuid(),
            secret TEXT NOT NULL CHECK (octet_length(secret) >= 32),
            label VARCHAR(100) NOT NULL DEFAULT '',
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            revoked_at TIMESTAMPTZ,
            PRIMARY KEY (organization_id, key_id),
            -- The key id alone names the key on the wire (X-Key-Id), like a staff e-mail at login.
            CONSTRAINT unique_event_key_id UNIQUE (key_id),
            CONSTRAINT check_event_key_revoked CHECK (revoked_at IS NULL OR revoked_at >= created_at)
        )
        """
    )
    tenant_rls("event_keys")
    grant_app(
        "event_keys",
        "SELECT (organization_id, key_id, label, created_at, revoked_at), INSERT, "
        "UPDATE (revoked_at)",
    )
    op.execute(
        "CREATE POLICY event_keys_lookup ON event_keys FOR SELECT TO CURRENT_USER USING (true)"
    )
    op.execute(
        """
        CREATE FUNCTION event_key_lookup(p_key_id UUID)
        RETURNS TABLE (organization_id UUID, secret TEXT)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            SELECT k.organization_id, k.secret FROM public.event_keys k
            WHERE k.key_id = p_key_id AND k.revoked_at IS NULL
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION event_key_lookup(UUID) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION event_key_lookup(UUID) TO {app_role()}")


def downgrade():
    op.execute("DROP FUNCTION event_key_lookup(UUID)")
    op.execute("DROP TABLE event_keys")
