"""Database scoping: the organization is set per transaction (never per connection) for RLS."""

import contextlib
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TypeVar

import psycopg
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy import event, exc
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

from portal.extensions import db

ORG_SETTING = "app.current_organization_id"
T = TypeVar("T")
# A pooled connection used this recently is taken as alive; an older one is pinged first.
IDLE_PING_SECONDS = 10.0
NO_ACTOR = ("", "")  # the audit trigger records "system"
STATED_ACTOR = "stated_actor"  # session.info key: the actor the open transaction has stated
_SCOPE = (
    "SELECT set_config('app.current_organization_id', %(organization)s, true),"
    " set_config('app.actor_id', %(actor_id)s, true),"
    " set_config('app.actor_label', %(actor_label)s, true)"
)
_ACTOR = (
    "SELECT set_config('app.actor_id', %(actor_id)s, true),"
    " set_config('app.actor_label', %(actor_label)s, true)"
)

_current_organization: ContextVar[uuid.UUID | None] = ContextVar(
    "current_organization", default=None
)
# (actor id, actor label) as text: who the audit rows of this context are written by.
_current_actor: ContextVar[tuple[str, str]] = ContextVar("current_actor", default=NO_ACTOR)


def current_organization_id() -> uuid.UUID | None:
    """The organization the current unit of work is scoped to, if any."""
    return _current_organization.get()


def _apply_scope(session: Session, connection: sa.Connection) -> None:
    org = _current_organization.get()
    actor_id, actor_label = actor = _current_actor.get()
    connection.exec_driver_sql(
        _SCOPE,
        {"organization": str(org) if org else "", "actor_id": actor_id, "actor_label": actor_label},
    )
    session.info[STATED_ACTOR] = actor


@event.listens_for(Session, "after_begin")
def _scope_new_transaction(session, transaction, connection):
    """Every transaction starts by stating its organization (SET LOCAL), or none: fail closed.

    The same statement states the audit actor, which the audit_log trigger records. A
    SAVEPOINT inside the transaction inherits its settings: nothing to state again.
    """
    if transaction.nested:
        return
    _apply_scope(session, connection)


@event.listens_for(Session, "after_transaction_end")
def _forget_stated_scope(session, transaction):
    """Once the transaction ends, its settings are gone; the next one states them anew."""
    if transaction.parent is None:
        session.info.pop(STATED_ACTOR, None)


def _scope_stated(session: Session) -> bool:
    """Whether the session's transaction has begun on a connection (and stated its scope).

    An autobegun transaction without a connection yet has stated nothing: it will on begin.
    """
    return STATED_ACTOR in session.info


def set_organization(organization_id: uuid.UUID | None) -> None:
    """Scope the rest of this context (request or job) to one organization."""
    _current_organization.set(organization_id)
    session = db.session()
    if _scope_stated(session) and session.is_active:
        # The open transaction was begun under the previous scope; restate it.
        _apply_scope(session, session.connection())


def set_scope(
    organization_id: uuid.UUID, actor_id: uuid.UUID | None, actor_label: str | None
) -> None:
    """Scope the context to an organization and an actor at once (one statement if restated)."""
    _current_actor.set((str(actor_id) if actor_id else "", actor_label or ""))
    set_organization(organization_id)


def set_actor(actor_id: uuid.UUID | None, actor_label: str | None) -> None:
    """State who writes the next audit rows of this context, in the open transaction too.

    The audit trigger takes the actor from these transaction settings (SET LOCAL), never from
    the inserted row; a transaction that begins later states it with the organization.
    """
    actor = (str(actor_id) if actor_id else "", actor_label or "")
    _current_actor.set(actor)
    session = db.session()
    # No open transaction: the next one states the actor in its scope statement, no round trip.
    if not _scope_stated(session) or session.info[STATED_ACTOR] == actor:
        return
    session.connection().exec_driver_sql(_ACTOR, {"actor_id": actor[0], "actor_label": actor[1]})
    session.info[STATED_ACTOR] = actor


def forget_organization() -> None:
    """Drop the scope (organization and actor) at the end of a request or job, no database."""
    _current_organization.set(None)
    _current_actor.set(NO_ACTOR)


@contextlib.contextmanager
def organization_scope(organization_id: uuid.UUID | None):
    """Run a block inside one organization's scope, restoring the previous one afterwards."""
    previous = _current_organization.get()
    set_organization(organization_id)
    try:
        yield
    except BaseException:
        _current_organization.set(previous)  # the transaction is failing; leave it alone
        raise
    set_organization(previous)


@event.listens_for(Pool, "connect")
@event.listens_for(Pool, "checkin")
def _note_last_use(dbapi_connection, record):
    record.info["last_used"] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection, record, proxy):
    """Ping only a connection that sat idle (instead of pool_pre_ping's trip on every checkout).

    A connection busy moments ago is very likely alive. If the server went away meanwhile, the
    one request that meets the dead connection fails, and SQLAlchemy then invalidates the whole
    pool (a disconnect error marks every older connection for reconnection), so a PostgreSQL
    restart costs at most one failed request per process, and none after an idle period.
    """
    if time.monotonic() - record.info.get("last_used", 0.0) < IDLE_PING_SECONDS:
        return
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is None:
        return
    try:
        alive = pgconn.exec_(b";").status == pq.ExecStatus.EMPTY_QUERY
    except psycopg.Error:
        alive = False
    if not alive:
        raise exc.DisconnectionError()  # the pool retries the checkout with a new connection


class UnsafeDatabaseRole(RuntimeError):
    """The configured application role could bypass Row-Level Security."""


def verify_app_role(engine: sa.Engine) -> None:
    """Refuse to run if the app role is superuser, has BYPASSRLS or owns any relation."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.text(
                "SELECT r.rolname, r.rolsuper, r.rolbypassrls,"
                " (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid"
                "  AND c.relnamespace = 'public'::regnamespace) AS owned"
                " FROM pg_roles r WHERE r.rolname = current_user"
            )
        ).one()
    if row.rolsuper or row.rolbypassrls or row.owned:
        raise UnsafeDatabaseRole(
            f"Database role {row.rolname!r} can bypass Row-Level Security "
            f"(superuser={row.rolsuper}, bypassrls={row.rolbypassrls}, owns {row.owned} "
            "relations). Connect the portal with the non-owner application role."
        )


def keep_scope(rows: Iterator[T]) -> Iterator[T]:
    """Carry the current organization into a generator that is consumed after the view returns.

    A streamed response runs in a new application context (a new session and transaction),
    where the request's scope is gone; this restates it around the generator.
    """
    organization_id = _current_organization.get()

    def scoped() -> Iterator[T]:
        with organization_scope(organization_id):
            yield from rows

    return scoped()
