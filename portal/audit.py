"""The append-only audit log: who did what to which row, with before and after."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Union

import sqlalchemy as sa
from flask import g, has_request_context
from flask_login import current_user
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import current_organization_id, set_actor
from portal.extensions import db
from portal.models import TenantMixin

if TYPE_CHECKING:
    from portal.auth.models import StaffUser


class SystemActor:
    """Who acts in jobs and commands: no staff user (the audit log says "system")."""

    staff_user_id = None
    email = None


SYSTEM_ACTOR = SystemActor()


class NamedActor:
    """A machine that acts under a name, e.g. an API key: no staff user, its name in the log."""

    staff_user_id = None

    def __init__(self, label: str):
        self.email = label


# A forward reference: portal.auth's services write audit rows, so this module cannot import it.
Actor = Union["StaffUser", SystemActor, NamedActor]


def _sealed(column_type, **kwargs):
    """A column the database's audit_log_seal trigger fills (whatever an INSERT says)."""
    return mapped_column(column_type, server_default=sa.FetchedValue(), **kwargs)


class AuditEntry(TenantMixin, db.Model):
    """One audited change; the app role may insert and read, never update or delete.

    The database sets when (now()) and who (the transaction's app.actor_* settings), numbers the
    row in one of its organization's 16 hash chains (chosen by the entity, so an entity's
    history is one chain) and seals it (prev_hash, row_hash).
    """

    __tablename__ = "audit_log"

    audit_id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    actor_id: Mapped[uuid.UUID | None] = _sealed(UUID(as_uuid=True))
    actor_label: Mapped[str] = _sealed(sa.String(255))
    action: Mapped[str] = mapped_column(sa.String(60))
    entity_type: Mapped[str] = mapped_column(sa.String(60))
    entity_id: Mapped[str] = mapped_column(sa.String(80))
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = _sealed(sa.DateTime(timezone=True))
    chain: Mapped[int] = _sealed(sa.SmallInteger)
    prev_hash: Mapped[str | None] = _sealed(sa.Text)
    row_hash: Mapped[str] = _sealed(sa.Text)


# Core, compiled once: an ORM flush of one new row costs more Python than the statement itself.
_INSERT = sa.insert(AuditEntry.__table__).returning(*AuditEntry.__table__.c)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(item) for item in value]
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def audit_record(
    *,
    action: str,
    entity_type: str,
    entity_id: Any,
    before: dict | None = None,
    after: dict | None = None,
    actor: Actor | None,
) -> AuditEntry:
    """Write an audit entry in the current transaction, naming who acts.

    The actor is a staff user, or SYSTEM_ACTOR for automatic actions (jobs, commands), even
    when run inside a request. It is stated in the transaction (the trigger reads it there) and
    the row is written at once, so two entries of one transaction can name different actors.
    The argument is required; None (no staff user at hand, e.g. a charge from another system)
    falls back to the logged-in user of the request, if any.
    """
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user
    set_actor(getattr(actor, "staff_user_id", None), getattr(actor, "email", None))
    session = db.session()
    session.flush()  # what the caller changed is written before the row that audits it
    row = session.execute(
        _INSERT,
        {
            "organization_id": current_organization_id(),
            "action": action,
            "entity_type": entity_type,
            "entity_id": str(entity_id),
            "before": _jsonable(before),
            "after": _jsonable(after),
            "request_id": g.get("request_id") if has_request_context() else None,
        },
    ).one()
    return AuditEntry(**row._mapping)  # what was written (not tracked by the session)


# --- verification -------------------------------------------------------------------------

_BROKEN_ROW = sa.text(
    """
    WITH chain AS (
        SELECT a.organization_id, a.audit_id, a.prev_hash, a.row_hash,
               lag(a.row_hash) OVER (PARTITION BY a.organization_id, a.chain ORDER BY a.audit_id)
                   AS previous_hash,
               audit_log_row_hash(a) AS computed_hash
        FROM audit_log a
        WHERE CAST(:organization_id AS uuid) IS NULL OR a.organization_id = :organization_id
    )
    SELECT organization_id, audit_id,
           CASE WHEN prev_hash IS DISTINCT FROM previous_hash
                THEN 'prev_hash does not match the previous row (a row was removed or added)'
                ELSE 'row_hash does not match the row (the row was changed)' END AS reason
    FROM chain
    WHERE prev_hash IS DISTINCT FROM previous_hash OR row_hash IS DISTINCT FROM computed_hash
    ORDER BY organization_id, audit_id
    LIMIT 1
    """
)
# Each head remembers its chain's last link: this catches rows cut off the end of a chain.
_BROKEN_HEAD = sa.text(
    """
    WITH last AS (
        SELECT DISTINCT ON (a.organization_id, a.chain) a.organization_id, a.chain,
               a.audit_id, a.row_hash
        FROM audit_log a
        WHERE CAST(:organization_id AS uuid) IS NULL OR a.organization_id = :organization_id
        ORDER BY a.organization_id, a.chain, a.audit_id DESC
    )
    SELECT organization_id, coalesce(h.last_audit_id, last.audit_id) AS audit_id,
           'the chain head does not match the last row (rows were removed at the end)' AS reason
    FROM audit_chain_heads h FULL JOIN last USING (organization_id, chain)
    WHERE (CAST(:organization_id AS uuid) IS NULL OR organization_id = :organization_id)
      AND (last.audit_id IS DISTINCT FROM h.last_audit_id
           OR last.row_hash IS DISTINCT FROM h.last_hash)
    ORDER BY organization_id, chain
    LIMIT 1
    """
)
_CHAIN_SIZE = sa.text(
    "SELECT count(*) AS rows, count(DISTINCT organization_id) AS organizations FROM audit_log"
    " WHERE CAST(:organization_id AS uuid) IS NULL OR organization_id = :organization_id"
)


@dataclass(frozen=True)
class ChainReport:
    """What a verification saw, and the first broken link if any."""

    rows: int
    organizations: int
    broken_organization_id: uuid.UUID | None = None
    broken_audit_id: int | None = None
    reason: str | None = None


def audit_verify(
    connection: sa.Connection, *, organization_id: uuid.UUID | None = None
) -> ChainReport:
    """Recompute every hash chain the connection can read (the owner reads all of them)."""
    params = {"organization_id": organization_id}
    size = connection.execute(_CHAIN_SIZE, params).one()
    broken = (
        connection.execute(_BROKEN_ROW, params).first()
        or connection.execute(_BROKEN_HEAD, params).first()
    )
    if broken is None:
        return ChainReport(size.rows, size.organizations)
    return ChainReport(
        size.rows, size.organizations, broken.organization_id, broken.audit_id, broken.reason
    )
