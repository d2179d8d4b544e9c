"""Row-Level Security, as the app role: no organization can touch another's rows, by any path."""

import uuid

import pytest
import sqlalchemy as sa
from psycopg import errors as pg_errors
from sqlalchemy.exc import DBAPIError, ProgrammingError

from portal import config as portal_config
from portal import create_app
from portal.db import UnsafeDatabaseRole
from portal.extensions import db
from tests import factories

# One row per tenant table as (columns, values); :org, :email, :customer and :account are
# filled per organization.
ROWS = {
    "staff_users": (
        "organization_id, email, full_name, password_hash, roles",
        ":org, :email, 'Persona', 'x', '{branch_staff}'",
    ),
    "customers": (
        "organization_id, customer_id, first_name, last_name",
        ":org, :customer, 'A', 'B'",
    ),
    "addresses": (
        "organization_id, customer_id, address_line1, city",
        ":org, :customer, 'Calle 50', 'Panamá'",
    ),
    "credit_accounts": (
        "organization_id, credit_account_id, customer_id, credit_limit, status",
        ":org, :account, :customer, 100, 'approved'",
    ),
    "credit_requests": (
        "organization_id, credit_account_id, kind, requested_limit, reason, requested_by",
        ":org, :account, 'increase', 200, 'Prueba',"
        " (SELECT staff_user_id FROM staff_users WHERE email = :email)",
    ),
    "organization_settings": ("organization_id", ":org"),
    "credit_usages": (
        "organization_id, usage_id, credit_account_id, order_id, amount, due_date",
        ":org, :usage, :account, gen_random_uuid(), 10, current_date",
    ),
    "credit_payments": (
        "organization_id, payment_id, credit_account_id, amount, payment_method, idempotency_key",
        ":org, :payment, :account, 5, 'cash', gen_random_uuid()",
    ),
    "credit_payment_allocations": (
        "organization_id, payment_id, usage_id, amount",
        ":org, :payment, :usage, 5",
    ),
    "customer_segments": ("organization_id, customer_id, segment_code", ":org, :customer, 'new'"),
    "event_inbox": (
        "organization_id, event_id, event_type, occurred_at, payload, payload_hash",
        ":org, gen_random_uuid(), 'orders.order.completed', now(), '{}', repeat('a', 64)",
    ),
    "purchases": (
        "organization_id, order_id, customer_id, total, completed_at, status, event_occurred_at",
        ":org, gen_random_uuid(), :customer, 10, now(), 'completed', now()",
    ),
    "segment_runs": (
        "organization_id, kind, snapshot, buyers, considered, written",
        ":org, 'full', pg_current_snapshot(), 0, 0, 0",
    ),
    "collection_assignments": (
        "organization_id, credit_account_id, collector_id",
        ":org, :account, (SELECT staff_user_id FROM staff_users WHERE email = :email)",
    ),
    "collection_contacts": (
        "organization_id, contact_id, credit_account_id, channel, outcome",
        ":org, :contact, :account, 'call', 'promise'",
    ),
    "collection_promises": (
        "organization_id, promise_id, credit_account_id, contact_id, amount, promised_on, due_on",
        ":org, gen_random_uuid(), :account, :contact, 10, current_date, current_date",
    ),
    "customer_notes": (
        "organization_id, customer_id, body",
        ":org, :customer, 'Llamó para confirmar la dirección'",
    ),
    "customer_segment_changes": (
        "organization_id, customer_id, previous_segment, segment",
        ":org, :customer, 'new', 'loyal'",
    ),
    "dunning_levels": (
        "organization_id, level_id, days_overdue, name, subject, body",
        ":org, :level, 1, 'Amistoso', 'Recordatorio', 'Estimado {cliente}'",
    ),
    "dunning_sends": (
        "organization_id, send_id, credit_account_id, level_id, contact_id, channel, sent_on,"
        " days_overdue, overdue, oldest_due_on, subject, body",
        ":org, gen_random_uuid(), :account, :level, :contact, 'letter', current_date, 1, 10,"
        " current_date, 'Recordatorio', 'Estimado'",
    ),
    "email_outbox": (
        "organization_id, outbox_id, credit_account_id, to_address, subject, body",
        ":org, gen_random_uuid(), :account, 'cliente@correo.pa', 'Recordatorio', 'Estimado'",
    ),
    "audit_log": (
        "organization_id, actor_label, action, entity_type, entity_id",
        ":org, 'prueba', 'test.created', 'test', '1'",
    ),
}
INSERTS = {
    table: f"INSERT INTO {table} ({columns}) VALUES ({values})"
    for table, (columns, values) in ROWS.items()
}
# A harmless UPDATE per table (audit_log is append-only and must refuse every UPDATE).
TOUCH = {
    "organizations": "name = name",
    "staff_users": "full_name = full_name",
    "customers": "notes = 'x'",
    "addresses": "city = city",
    "credit_accounts": "payment_term_days = payment_term_days",
    "credit_usages": "status = status",
    "credit_payments": "payment_reference = 'x'",
    "credit_payment_allocations": "amount = amount",
    "credit_requests": "reason = reason",
    "organization_settings": "max_credit_limit = max_credit_limit",
    "customer_segments": "segment_code = segment_code",
    "audit_log": "action = action",
    "event_inbox": "attempts = attempts",
    "purchases": "total = total",
    "purchase_summaries": "orders = orders",  # its row comes with the customer (a trigger)
    "segment_runs": "kind = kind",  # append-only: no UPDATE or DELETE at all
    "collection_assignments": "assigned_at = assigned_at",
    "collection_contacts": "note = note",  # append-only: no UPDATE or DELETE at all
    "collection_promises": "state = state",
    "customer_notes": "body = body",  # append-only
    "customer_segment_changes": "segment = segment",  # append-only
    "dunning_levels": "name = name",
    "dunning_sends": "letter_mailed_at = letter_mailed_at",
    "email_outbox": "attempts = attempts",
}
TENANT_TABLES = sorted(TOUCH)


def _run(connection, scope, statement, **params):
    connection.exec_driver_sql(
        "SELECT set_config('app.current_organization_id', %s, true)", (str(scope) if scope else "",)
    )
    return connection.execute(sa.text(statement), params)


def _populate(organization_id: uuid.UUID) -> dict:
    ids = {
        "org": organization_id,
        "customer": uuid.uuid4(),
        "account": uuid.uuid4(),
        "usage": uuid.uuid4(),
        "payment": uuid.uuid4(),
        "contact": uuid.uuid4(),
        "level": uuid.uuid4(),
        "email": f"{uuid.uuid4().hex[:10]}@test.pa",
    }
    with db.engine.begin() as connection:
        for statement in INSERTS.values():
            _run(connection, organization_id, statement, **ids)
    return ids


@pytest.fixture
def two_orgs(app, app_ctx):
    """Two organizations with a row in every tenant table."""
    first = factories.organization_create("Tienda A")
    second = factories.organization_create("Tienda B")
    return _populate(first), _populate(second)


def test_every_table_has_enabled_and_forced_rls_with_the_policy(app_ctx, tenant_tables):
    assert set(TENANT_TABLES) <= set(tenant_tables)
    with db.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
                " p.qual, p.with_check FROM pg_class c"
                " JOIN pg_policies p ON p.tablename = c.relname"
                " AND p.policyname = c.relname || '_organization_isolation'"
                " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'"
            )
        ).all()
    by_table = {row.relname: row for row in rows}
    for table in tenant_tables:
        row = by_table.get(table)
        assert row is not None, f"{table} has no organization isolation policy"
        assert row.relrowsecurity and row.relforcerowsecurity, table
        for expression in (row.qual, row.with_check):
            assert "current_setting('app.current_organization_id'::text, true)" in expression
            assert "nullif" in expression and "SELECT" in expression


def test_app_role_is_not_owner_superuser_or_bypassrls(app_ctx):
    with db.engine.connect() as connection:
        role = connection.execute(
            sa.text(
                "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb,"
                " (SELECT count(*) FROM pg_class WHERE relowner = r.oid) AS owned"
                " FROM pg_roles r WHERE rolname = current_user"
            )
        ).one()
    assert not role.rolsuper and not role.rolbypassrls
    assert not role.rolcreaterole and not role.rolcreatedb
    assert role.owned == 0


def test_app_refuses_to_start_with_a_role_that_can_bypass_rls(app, services):
    config = portal_config.TestingConfig(
        SQLALCHEMY_DATABASE_URI=services.database_owner_url, REDIS_URL=services.redis_url
    )
    with pytest.raises(UnsafeDatabaseRole):
        create_app(config)


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_without_organization_every_select_returns_zero_rows(two_orgs, table):
    with db.engine.begin() as connection:
        assert _run(connection, None, f"SELECT count(*) FROM {table}").scalar() == 0
    with db.engine.connect() as connection:  # never set at all in this transaction
        assert connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_select_sees_only_own_organization(two_orgs, table):
    mine, theirs = two_orgs
    with db.engine.begin() as connection:
        organizations = _run(
            connection, mine["org"], f"SELECT DISTINCT organization_id FROM {table}"
        )
        assert [row[0] for row in organizations] == [mine["org"]]
        forged = _run(
            connection,
            mine["org"],
            f"SELECT count(*) FROM {table} WHERE organization_id = :other",
            other=theirs["org"],
        )
        assert forged.scalar() == 0


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_update_and_delete_cannot_reach_another_organization(two_orgs, table):
    mine, theirs = two_orgs
    for statement in (
        f"UPDATE {table} SET {TOUCH[table]} WHERE organization_id = :other",
        f"DELETE FROM {table} WHERE organization_id = :other",
    ):
        with db.engine.begin() as connection:
            try:
                result = _run(connection, mine["org"], statement, other=theirs["org"])
            except ProgrammingError as error:  # audit_log/organizations: no such privilege at all
                assert isinstance(error.orig, pg_errors.InsufficientPrivilege)
            else:
                assert result.rowcount == 0
    with db.engine.begin() as connection:
        assert _run(connection, theirs["org"], f"SELECT count(*) FROM {table}").scalar() >= 1


@pytest.mark.parametrize("table", sorted(INSERTS))
def test_insert_with_forged_organization_is_refused(two_orgs, table):
    mine, theirs = two_orgs
    forged = theirs | {
        "email": f"{uuid.uuid4().hex[:8]}@test.pa",
        "usage": uuid.uuid4(),
        "payment": uuid.uuid4(),
        "contact": uuid.uuid4(),
        "level": uuid.uuid4(),
    }
    with pytest.raises(DBAPIError) as raised, db.engine.begin() as connection:
        _run(connection, mine["org"], INSERTS[table], **forged)
    assert "row-level security" in str(raised.value.orig)


@pytest.mark.parametrize("table", sorted(set(TENANT_TABLES) - {"audit_log"}))
def test_rows_cannot_be_moved_to_another_organization(two_orgs, table):
    mine, theirs = two_orgs
    with pytest.raises(DBAPIError) as raised, db.engine.begin() as connection:
        _run(
            connection,
            mine["org"],
            f"UPDATE {table} SET organization_id = :other",
            other=theirs["org"],
        )
    assert isinstance(
        raised.value.orig, pg_errors.InsufficientPrivilege | pg_errors.ForeignKeyViolation
    ) or "row-level security" in str(raised.value.orig)


def test_audit_log_is_append_only_even_within_the_organization(two_orgs):
    mine, _ = two_orgs
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(ProgrammingError), db.engine.begin() as connection:
            _run(connection, mine["org"], statement)


def test_customer_360_view_applies_rls(two_orgs):
    mine, _ = two_orgs
    with db.engine.begin() as connection:
        rows = _run(connection, mine["org"], "SELECT organization_id FROM v_customer_360").all()
        assert {row[0] for row in rows} == {mine["org"]}
        assert _run(connection, None, "SELECT count(*) FROM v_customer_360").scalar() == 0


def test_login_lookup_function_returns_only_ids(two_orgs, app_ctx):
    mine, _ = two_orgs
    with db.engine.begin() as connection:
        found = connection.execute(
            sa.text("SELECT * FROM staff_login_lookup(:email)"), {"email": mine["email"].upper()}
        ).one()
        assert found._fields == ("organization_id", "staff_user_id")
        assert found.organization_id == mine["org"]
        # The same role still cannot read the table around the function.
        assert connection.execute(sa.text("SELECT count(*) FROM staff_users")).scalar() == 0
