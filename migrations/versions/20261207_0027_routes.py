"""Routing tables: what a request must find before it knows its organization.

Three lookups run before the organization is known: login (by e-mail), a signed event (by key
id) and an API call (by key prefix). Until now each searched its tenant table across every
organization and relied on a global unique constraint that lacks `organization_id` — neither
works once tenant tables are distributed by organization (docs/scaling.md). Each now reads a
small routing table that maps the key to its organization (a Citus reference table, copied to
every node), then at most one tenant row by (organization_id, key), routed to one node:

- `login_routes (email, organization_id, staff_user_id)`: staff e-mail is unique per
  organization, so an address may route to several accounts (login tries each);
- `event_key_routes (key_id, organization_id)` and `api_key_routes (prefix, organization_id)`:
  their primary keys keep key ids and prefixes unique across organizations, as the dropped
  global constraints did.

Triggers on the tenant tables keep the routes (SECURITY DEFINER: the app role has no grant on a
route, so no organization learns another's e-mails or keys; RLS is on like on every table, with
an owner policy for the reviewed functions). The app role still calls only the three lookups.

Revision ID: 0027_routes
Revises: 0026_statement_mail
Create Date: 2026-12-07
"""

from alembic import op

from portal.schema import tenant_rls

revision = "0027_routes"
down_revision = "0026_statement_mail"
branch_labels = None
depends_on = None

# (route table, its key column definition, the tenant table, the key column).
ROUTES = (
    ("event_key_routes", "key_id UUID PRIMARY KEY", "event_keys", "key_id"),
    ("api_key_routes", "prefix VARCHAR(16) PRIMARY KEY", "api_keys", "prefix"),
)
# The key lookups: (function, its argument, what it returns, the key's columns it reads).
LOOKUPS = (
    (
        "event_key_lookup",
        "p_key_id UUID",
        "organization_id UUID, secret TEXT",
        "k.organization_id, k.secret",
    ),
    (
        "api_key_lookup",
        "p_prefix TEXT",
        "organization_id UUID, api_key_id UUID, name VARCHAR, secret_hash CHAR, scopes TEXT[],"
        " last_used_at TIMESTAMPTZ",
        "k.organization_id, k.api_key_id, k.name, k.secret_hash, k.scopes, k.last_used_at",
    ),
)


def _function(name: str, argument: str, returns: str, language: str, body: str) -> None:
    """CREATE OR REPLACE one of the reviewed lookups (SECURITY DEFINER, fixed search path)."""
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {name}({argument}) RETURNS TABLE ({returns})
        LANGUAGE {language} STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        {body}
        $$
        """
    )


def _key_lookups(*, routed: bool) -> None:
    """The key lookups: through their route (0027), or by scanning every organization (0009,
    0017)."""
    for (name, argument, returns, columns), (route, _, tenant, key) in zip(
        LOOKUPS, ROUTES, strict=True
    ):
        parameter = argument.split()[0]
        found = f"k.{key} = {parameter} AND k.revoked_at IS NULL"
        if not routed:
            _function(
                name,
                argument,
                returns,
                "sql",
                f"SELECT {columns} FROM public.{tenant} k WHERE {found}",
            )
            continue
        _function(
            name,
            argument,
            returns,
            "plpgsql",
            f"""
            DECLARE
                route_organization UUID;
            BEGIN
                SELECT r.organization_id INTO route_organization
                FROM public.{route} r WHERE r.{key} = {parameter};
                RETURN QUERY SELECT {columns} FROM public.{tenant} k
                    WHERE k.organization_id = route_organization AND {found};
            END
            """,
        )


def _login_lookup(source: str) -> None:
    """staff_login_lookup over `source` (login_routes since 0027, staff_users before)."""
    _function(
        "staff_login_lookup",
        "p_email TEXT",
        "organization_id UUID, staff_user_id UUID",
        "sql",
        f"SELECT s.organization_id, s.staff_user_id FROM public.{source} s"
        " WHERE s.email = lower(btrim(p_email))",
    )


def _keeper(function: str, route: str, key: str, extra: str = "") -> None:
    """A row trigger function that keeps `route` equal to its tenant table's (key, organization)."""
    extra_columns = f", {extra}" if extra else ""
    extra_values = f", NEW.{extra}" if extra else ""
    op.execute(
        f"""
        CREATE FUNCTION {function}() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                DELETE FROM public.{route}
                WHERE {key} = OLD.{key} AND organization_id = OLD.organization_id;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO public.{route} ({key}, organization_id{extra_columns})
                VALUES (NEW.{key}, NEW.organization_id{extra_values});
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC")


def _owner_only(route: str) -> None:
    """RLS like every table (the app role has no grant at all); the owner's functions and
    triggers read and write every row."""
    tenant_rls(route)
    op.execute(
        f"CREATE POLICY {route}_owner ON {route} TO CURRENT_USER USING (true) WITH CHECK (true)"
    )


def upgrade():
    op.execute(
        """
        CREATE TABLE login_routes (
            email VARCHAR(255) NOT NULL,
            organization_id UUID NOT NULL REFERENCES organizations (organization_id),
            staff_user_id UUID NOT NULL,
            PRIMARY KEY (email, organization_id)
        )
        """
    )
    _owner_only("login_routes")
    op.execute(
        "INSERT INTO login_routes (email, organization_id, staff_user_id)"
        " SELECT email, organization_id, staff_user_id FROM staff_users"
    )
    _keeper("login_routes_keep", "login_routes", "email", extra="staff_user_id")
    op.execute(
        "CREATE TRIGGER staff_users_login_route AFTER INSERT OR DELETE OR UPDATE OF email"
        " ON staff_users FOR EACH ROW EXECUTE FUNCTION login_routes_keep()"
    )
    for route, key_column, tenant, key in ROUTES:
        op.execute(
            f"""
            CREATE TABLE {route} (
                {key_column},
                organization_id UUID NOT NULL REFERENCES organizations (organization_id)
            )
            """
        )
        _owner_only(route)
        op.execute(
            f"INSERT INTO {route} ({key}, organization_id)"
            f" SELECT {key}, organization_id FROM {tenant}"
        )
        _keeper(f"{route}_keep", route, key)
        op.execute(
            f"CREATE TRIGGER {tenant}_route AFTER INSERT OR DELETE OR UPDATE OF {key}"
            f" ON {tenant} FOR EACH ROW EXECUTE FUNCTION {route}_keep()"
        )
    # The routes' primary keys hold what these global constraints held.
    op.execute("ALTER TABLE event_keys DROP CONSTRAINT unique_event_key_id")
    op.execute(
        "ALTER TABLE api_keys ADD CONSTRAINT unique_api_key_organization_prefix"
        " UNIQUE (organization_id, prefix)"
    )
    op.execute("ALTER TABLE api_keys DROP CONSTRAINT unique_api_key_prefix")
    op.execute("DROP INDEX staff_users_email")  # login reads login_routes now
    _login_lookup("login_routes")
    _key_lookups(routed=True)


def downgrade():
    _key_lookups(routed=False)
    _login_lookup("staff_users")
    op.execute("CREATE INDEX staff_users_email ON staff_users (email)")
    op.execute("ALTER TABLE api_keys ADD CONSTRAINT unique_api_key_prefix UNIQUE (prefix)")
    op.execute("ALTER TABLE api_keys DROP CONSTRAINT unique_api_key_organization_prefix")
    op.execute("ALTER TABLE event_keys ADD CONSTRAINT unique_event_key_id UNIQUE (key_id)")
    for route, _, tenant, _ in ROUTES:
        op.execute(f"DROP TRIGGER {tenant}_route ON {tenant}")
        op.execute(f"DROP FUNCTION {route}_keep()")
        op.execute(f"DROP TABLE {route}")
    op.execute("DROP TRIGGER staff_users_login_route ON staff_users")
    op.execute("DROP FUNCTION login_routes_keep()")
    op.execute("DROP TABLE login_routes")
