"""DDL helpers for migrations: tenant RLS and app-role grants, stated once.

Revisions call these, so their behaviour must never change; add a new helper instead.
"""

from alembic import context, op

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
