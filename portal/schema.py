"""DDL helpers for migrations: tenant RLS and app-role grants, stated once.

Revisions call these, so their behaviour must never change; add a new helper instead.
"""

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import context, op

REVISIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"

TENANT_PREDICATE = (
    "organization_id = "
    "(SELECT nullif(current_setting('app.current_organization_id', true), '')::uuid)"
)


def app_role() -> str:
    """The role the web app and the worker connect as (quoted identifier)."""
    role = context.config.attributes["app_role"]
    return '"' + role.replace('"', '""') + '"'


def tenant_rls(table: str) -> None:
    """ENABLE and FORCE RLS on a tenant table with the organization isolation policy."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {table}_organization_isolation ON {table} "
        f"USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})"
    )


def grant_app(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> None:
    """Grant the app role what it may do on a table (never ownership)."""
    op.execute(f"GRANT {privileges} ON {table} TO {app_role()}")


def in_every_organization(statements: str) -> None:
    """Run data statements once per organization in its RLS scope (the owner is subject too)."""
    op.execute(
        f"""
        DO $$
        DECLARE org uuid;
        BEGIN
            FOR org IN SELECT organization_id FROM organizations LOOP
                PERFORM set_config('app.current_organization_id', org::text, true);
                {statements}
            END LOOP;
            PERFORM set_config('app.current_organization_id', '', true);
        END
        $$
        """
    )


# Every audit row, oldest first per organization, re-sealed as one chain per organization, and
# the heads written anew (run by the owner with RLS lifted for the DDL transaction only, and the
# append-only trigger off while the hashes are written).
_AUDIT_CHAINS_REBUILD = """
DO $$
DECLARE
    r audit_log;
    previous TEXT;
    current_org UUID;
BEGIN
    DELETE FROM audit_chain_heads;
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


def audit_chains_rebuild() -> None:
    """Seal every audit row into one hash chain per organization (0008, and 0023's downgrade)."""
    op.execute("ALTER TABLE audit_log NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE audit_chain_heads NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
    op.execute(_AUDIT_CHAINS_REBUILD)
    op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
    op.execute("ALTER TABLE audit_log FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE audit_chain_heads FORCE ROW LEVEL SECURITY")


# 0008's seal (one chain per organization; 0023 splits it in 16, its downgrade restores this).
# SECURITY DEFINER: the chain heads belong to the owner; the app role can only read them.
AUDIT_SEAL_ONE_CHAIN = """
CREATE OR REPLACE FUNCTION audit_log_seal() RETURNS trigger
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


def earlier_revision(filename: str) -> ModuleType:
    """An earlier revision's module (migrations/versions/`filename`), for a revision that
    rebuilds or restores what that one wrote (its SQL builders, its templates)."""
    spec = importlib.util.spec_from_file_location(Path(filename).stem, REVISIONS / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
