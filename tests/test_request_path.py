"""The request path: how many statements and database round trips a request costs.

Round trips are counted at the wire (libpq's protocol trace of every pooled connection): each
Query or Sync message the client sends is one wait for the server. Redis commands are counted
by wrapping the connection pool's send.
"""

import contextlib
import importlib
import os
import re
import tempfile
import uuid

import pytest
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy import event

from portal.extensions import db
from portal.tasks import redis_connection
from tests import factories

HTMX = {"HX-Request": "true"}
# A message the client sent, in libpq's trace: direction, length, type, contents.
FRONTEND = re.compile(r"F\t\d+\t\w+")


class Counts:
    """What one block of requests sent to PostgreSQL and Redis."""

    def __init__(self):
        self.statements: list[str] = []
        self.round_trips = 0
        self.redis_round_trips = 0
        self.wire: list[list[str]] = []


@contextlib.contextmanager
def wire_counts(app):
    """Count statements, PostgreSQL round trips and Redis round trips inside the block."""
    counts = Counts()
    with app.app_context():
        engine = db.engine
        redis = redis_connection()
    engine.pool.dispose()  # every connection of the block is a fresh, traced one
    trace = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in the finally below)

    def on_connect(dbapi_connection, record):
        dbapi_connection.pgconn.trace(trace.fileno())
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        counts.statements.append(statement)

    original_send = redis.connection_pool.connection_class.send_packed_command

    def send(self, command, check_health=True):
        counts.redis_round_trips += 1
        return original_send(self, command, check_health)

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "before_cursor_execute", on_execute)
    redis.connection_pool.disconnect()
    redis.connection_pool.connection_class.send_packed_command = send
    # Connecting (authentication, parameter status) is not a request's cost: open them first.
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
        connection.rollback()
    redis.ping()
    counts.redis_round_trips = 0
    trace.flush()
    start = os.lseek(trace.fileno(), 0, os.SEEK_END)
    counts.statements.clear()
    try:
        yield counts
    finally:
        event.remove(engine, "connect", on_connect)
        event.remove(engine, "before_cursor_execute", on_execute)
        redis.connection_pool.connection_class.send_packed_command = original_send
        engine.pool.dispose()
        trace.seek(start)
        sent = [line.split("\t") for line in trace.read().splitlines() if FRONTEND.match(line)]
        counts.wire = [fields for fields in sent if fields[2] in {"Query", "Sync", "Parse"}]
        counts.round_trips = sum(1 for fields in sent if fields[2] in {"Query", "Sync"})
        trace.close()


def test_wire_counts_sees_each_round_trip(app):
    """The counter itself: a two-statement transaction is BEGIN + 2 + COMMIT."""
    with app.app_context(), wire_counts(app) as counts, db.engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
        connection.exec_driver_sql("SELECT 2")
        connection.commit()
    assert len(counts.statements) == 2
    assert counts.round_trips == 4


def test_a_logged_in_htmx_partial_costs_one_redis_trip_and_no_user_query(app, org_a, login_as):
    """Phone lookup: BEGIN, the scope (organization and actor), the search with its customers'
    rows in one statement, ROLLBACK.

    Before: a ping, the user's row and a second trip to Redis (7 round trips, 4 statements), then
    the search and its rows as two statements (5 round trips, 3 statements).
    """
    factories.customer_create(org_a.organization_id, phone="+50761234567")
    client = login_as("branch_staff")
    client.get("/customers/?q=6123-4567", headers=HTMX)  # the first request caches the user
    with wire_counts(app) as counts:
        response = client.get("/customers/?q=6123-4567", headers=HTMX)
    assert response.status_code == 200 and "6123-4567" in response.text
    assert counts.statements[0].startswith("SELECT set_config('app.current_organization_id'")
    assert "app.actor_id" in counts.statements[0]
    assert not any("staff_users" in statement for statement in counts.statements)
    assert len(counts.statements) == 2
    assert counts.round_trips == 4
    assert counts.redis_round_trips == 1


def test_an_audited_write_states_its_actor_in_the_scope_statement(app, org_a, login_as):
    """The logged-in user is the audit actor from the first statement: no separate trip."""
    customer = factories.customer_create(org_a.organization_id)
    client = login_as("branch_staff")
    client.get(f"/customers/{customer.customer_id}")
    with wire_counts(app) as counts:
        response = client.post(
            f"/customers/{customer.customer_id}/status",
            {"status": "inactive", "status_reason": "Se mudó", "version_id": "1"},
        )
    assert response.status_code in {302, 303}, response.text
    assert sum("app.actor_id" in statement for statement in counts.statements) == 1
    entries = factories.audit_entries(org_a.organization_id, customer.customer_id)
    assert entries[-1].actor_id == org_a.users["branch_staff"].staff_user_id


def test_healthz_is_one_database_and_one_redis_round_trip(app, client):
    client.get("/healthz")
    with wire_counts(app) as counts:
        response = client.get("/healthz")
    assert response.json == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert counts.statements == ["SELECT 1"]
    assert counts.round_trips == 1
    assert counts.redis_round_trips == 1


def _drop_pooled_connections(app) -> None:
    """What a PostgreSQL restart does to the pool: every server side of it goes away."""
    # A role may end its own sessions; this connection is outside the app's pool.
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        ended = connection.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE usename = current_user AND pid <> pg_backend_pid()"
        ).scalar_one()
    engine.dispose()
    assert ended > 0


def _status(client, url: str) -> int:
    try:
        return client.get(url, headers=HTMX).status_code
    except sa.exc.OperationalError:
        return 500  # TESTING propagates the error the error page would show


def test_a_database_restart_fails_at_most_one_request(app, login_as):
    """Without a ping per checkout, busy connections are trusted; one failure resets the pool."""
    client = login_as("branch_staff")
    for _ in range(3):
        client.get("/customers/?q=6123", headers=HTMX)
    _drop_pooled_connections(app)
    statuses = [_status(client, "/customers/?q=6123") for _ in range(4)]
    assert statuses.count(500) <= 1
    assert statuses[1:] == [200, 200, 200]


def test_a_database_restart_while_idle_fails_no_request(app, login_as, monkeypatch):
    """A connection that sat idle is pinged first and replaced if the server went away."""
    client = login_as("branch_staff")
    client.get("/customers/?q=6123", headers=HTMX)
    _drop_pooled_connections(app)
    monkeypatch.setattr(
        importlib.import_module("portal.db"), "IDLE_PING_SECONDS", 0.0
    )  # as if idle for a while
    assert [_status(client, "/customers/?q=6123") for _ in range(2)] == [200, 200]


@pytest.fixture
def admin(login_as):
    client = login_as("org_admin")
    client.get("/users/")
    return client


def test_a_removed_role_forbids_the_next_request(app, org_a, login_as, admin):
    approver = login_as("credit_approver")
    assert approver.get("/credit/queue").status_code == 200  # the user is now cached
    user = org_a.users["credit_approver"]
    admin.get(f"/users/{user.staff_user_id}")
    response = admin.post(
        f"/users/{user.staff_user_id}", {"full_name": user.full_name, "roles": ["branch_staff"]}
    )
    assert response.status_code == 302
    assert approver.get("/credit/queue").status_code == 403
    assert approver.get("/customers/").status_code == 200


def test_a_deactivated_user_is_logged_out_at_the_next_request(app, org_a, login_as, admin):
    staff = login_as("branch_staff")
    assert staff.get("/customers/").status_code == 200  # the user is now cached
    user = org_a.users["branch_staff"]
    admin.get(f"/users/{user.staff_user_id}/active/off")
    response = admin.post(f"/users/{user.staff_user_id}/active/off", {"confirm": "yes"})
    assert response.status_code == 302
    response = staff.get("/customers/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_password_change_ends_the_other_cached_sessions(app, org_a, login_as):
    user = org_a.users["credit_staff"]
    other, this = login_as("credit_staff"), login_as("credit_staff")
    assert other.get("/customers/").status_code == 200  # the user is now cached
    this.get("/password")
    response = this.post(
        "/password",
        {
            "current_password": factories.TEST_PASSWORD,
            "password": "Una clave nueva y larga 2026",
            "password_confirm": "Una clave nueva y larga 2026",
        },
    )
    assert response.status_code == 302, response.text
    assert other.get("/customers/").status_code == 302  # the other session ended
    assert this.get("/customers/").status_code == 200  # this one goes on
    assert user.email  # the fixture user is unchanged in memory


def test_a_request_within_the_minute_sends_no_new_cookie(login_as):
    """The session cookie is signed again only when seen_at moves (at most once a minute)."""
    client = login_as("branch_staff")
    client.get("/customers/")
    response = client.get("/customers/?q=6123", headers=HTMX)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_an_api_charge_with_a_known_key_states_its_scope_once(app, org_a):
    """The key's row comes from its Redis copy: no lookup, no restated scope. The charge is
    the scope, the idempotency record, the customer and account, the charge itself (one
    statement), the audit row and the stored answer.

    Before: 14 statements (the key lookup, a scope restated, the usage and account re-read).
    """
    customer = factories.customer_create(org_a.organization_id)
    factories.credit_account_create(org_a.organization_id, customer.customer_id)
    key = factories.api_key_create(org_a.organization_id)
    client = app.test_client()

    def charge():
        order = uuid.uuid4()
        return client.post(
            "/api/v1/credit/charges",
            json={
                "customer_id": str(customer.customer_id),
                "order_id": str(order),
                "order_number": f"PED-{order.hex[:8]}",
                "amount": "1.00",
            },
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": order.hex},
        )

    # The first use notes the key's last use (dropping its copy); the second copies it again.
    assert charge().status_code == charge().status_code == 201
    with wire_counts(app) as counts:
        response = charge()
    assert response.status_code == 201
    assert not any("api_key_lookup" in statement for statement in counts.statements)
    assert sum("set_config" in statement for statement in counts.statements) == 1
    assert counts.statements[0].startswith("SELECT set_config('app.current_organization_id'")
    assert len(counts.statements) == 6
