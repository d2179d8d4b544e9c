"""Collections reads: the worklist (one row per account with an overdue balance), the contact
log of an account, the collectors one may assign to.

The worklist starts from each account's aging buckets as the credit reports read them
(`aging_accounts_sql`: stored rows, or recomputed where stale), adds the last contact, the latest
promise and the collector, and orders by priority — a broken promise not followed by a contact
first, then a next action due today or earlier, then the rest — and amount overdue, largest
first; paged by keyset on (priority, overdue, account id).
"""

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from portal import clock
from portal.auth.models import StaffUser
from portal.auth.permissions import PERMISSIONS
from portal.collections.models import CollectionContact, CollectionPromise
from portal.credit.reports import AGING_BUCKETS, aging_accounts_sql
from portal.extensions import db

OVERDUE_BUCKETS = AGING_BUCKETS[1:]
WORKLIST_PAGE_SIZE = 50
QUIET_DAYS = 7  # "sin contacto en 7 días"
UNASSIGNED = "none"


@dataclass(frozen=True)
class WorklistFilters:
    """What the worklist is narrowed to; None means no narrowing."""

    bucket: str | None = None
    collector: uuid.UUID | str | None = None  # a staff user id, or UNASSIGNED
    quiet: bool = False  # no contact in the last QUIET_DAYS days
    broken: bool = False  # a broken promise not yet followed up


@dataclass(frozen=True)
class WorklistPage:
    """One page of the worklist and the cursor of the next page, if any."""

    rows: list
    next_cursor: str | None


def worklist_cursor_parse(cursor: str | None) -> tuple[int, Decimal, uuid.UUID] | None:
    """The (priority, overdue, account id) a "Cargar más" link carries; ValueError if forged."""
    if not cursor:
        return None
    try:
        priority, amount, account_id = cursor.split("_")
        return int(priority), Decimal(amount), uuid.UUID(account_id)
    except (InvalidOperation, ValueError) as error:
        raise ValueError(cursor) from error


def _conditions(filters: WorklistFilters) -> list[str]:
    conditions = ["g.overdue > 0"]
    if filters.bucket is not None:
        if filters.bucket not in dict(OVERDUE_BUCKETS):
            raise ValueError(filters.bucket)
        conditions.append(f"g.{filters.bucket} > 0")  # a known column name, never user text
    if filters.collector == UNASSIGNED:
        conditions.append("asg.collector_id IS NULL")
    elif filters.collector is not None:
        conditions.append("asg.collector_id = :collector")
    if filters.quiet:
        conditions.append(
            "(lc.created_at IS NULL OR "
            f"(lc.created_at AT TIME ZONE '{clock.BUSINESS_ZONE.key}')::date <= :quiet_since)"
        )
    if filters.broken:
        conditions.append("lp.state = 'broken' AND lc.created_at <= lp.settled_at")
    return conditions


def _worklist_statement(filters: WorklistFilters, today: date, *, after: bool) -> sa.TextClause:
    return sa.text(
        f"""
        WITH listed AS (
            SELECT g.*, a.customer_id, asg.collector_id,
                   lc.channel AS last_channel, lc.outcome AS last_outcome,
                   lc.created_at AS last_contact_at, lc.next_action_on,
                   CASE WHEN lp.state = 'open' THEN lp.amount END AS promise_amount,
                   CASE WHEN lp.state = 'open' THEN lp.due_on END AS promise_due_on,
                   coalesce(lp.state = 'broken' AND lc.created_at <= lp.settled_at, false)
                       AS promise_broken,
                   CASE WHEN lp.state = 'broken' AND lc.created_at <= lp.settled_at THEN 0
                        WHEN lc.next_action_on <= :today THEN 1
                        ELSE 2 END AS priority
            FROM ({aging_accounts_sql(today)}) AS g
            JOIN credit_accounts a ON a.credit_account_id = g.credit_account_id
            LEFT JOIN collection_assignments asg
                ON asg.credit_account_id = g.credit_account_id
            LEFT JOIN LATERAL (
                SELECT c.channel, c.outcome, c.created_at, c.next_action_on
                FROM collection_contacts c WHERE c.credit_account_id = g.credit_account_id
                ORDER BY c.created_at DESC, c.contact_id DESC LIMIT 1
            ) AS lc ON true
            LEFT JOIN LATERAL (
                SELECT p.state, p.amount, p.due_on, p.settled_at
                FROM collection_promises p WHERE p.credit_account_id = g.credit_account_id
                ORDER BY p.promised_on DESC, p.promise_id DESC LIMIT 1
            ) AS lp ON true
            WHERE {" AND ".join(_conditions(filters))}
        )
        SELECT listed.*, c.full_name AS name, c.phone,
               s.full_name AS collector_name,
               (SELECT min(u.due_date) FROM credit_usages u
                WHERE u.credit_account_id = listed.credit_account_id
                  AND u.status IN ('pending', 'overdue') AND u.due_date < :today) AS oldest_due
        FROM listed
        JOIN customers c ON c.customer_id = listed.customer_id
        LEFT JOIN staff_users s ON s.staff_user_id = listed.collector_id
        {
            "WHERE listed.priority > :after_priority OR (listed.priority = :after_priority AND "
            "(listed.overdue, listed.credit_account_id) < (:after_amount, :after_id))"
            if after
            else ""
        }
        ORDER BY listed.priority, listed.overdue DESC, listed.credit_account_id DESC
        LIMIT :limit
        """
    )


def worklist_page(
    filters: WorklistFilters,
    *,
    cursor: str | None = None,
    size: int = WORKLIST_PAGE_SIZE,
    today: date | None = None,
) -> WorklistPage:
    """Accounts with an overdue balance in worklist order, one page (ValueError: bad cursor)."""
    today = today or clock.today()
    position = worklist_cursor_parse(cursor)
    parameters = {
        "today": today,
        "quiet_since": today - timedelta(days=QUIET_DAYS),
        "collector": filters.collector,
        "limit": size + 1,
    }
    if position:
        keys = ("after_priority", "after_amount", "after_id")
        parameters |= dict(zip(keys, position, strict=True))
    statement = _worklist_statement(filters, today, after=position is not None)
    rows = db.session.execute(statement, parameters).all()
    if len(rows) <= size:
        return WorklistPage(rows, None)
    last = rows[size - 1]
    return WorklistPage(rows[:size], f"{last.priority}_{last.overdue}_{last.credit_account_id}")


def collectors() -> list[StaffUser]:
    """Active staff who may work the worklist, by name (the people one may assign to)."""
    roles = PERMISSIONS["collections.work"]
    return list(
        db.session.scalars(
            sa.select(StaffUser)
            .where(StaffUser.is_active, StaffUser.roles.overlap(list(roles)))
            .order_by(StaffUser.full_name, StaffUser.staff_user_id)
        )
    )


def account_contacts(account_id: uuid.UUID, *, limit: int = 20) -> list:
    """The account's latest contacts, newest first, with their promise and who logged them."""
    return db.session.execute(
        sa.select(
            CollectionContact,
            CollectionPromise,
            sa.func.coalesce(StaffUser.full_name, "Sistema").label("author"),
        )
        .outerjoin(CollectionPromise, CollectionPromise.contact_id == CollectionContact.contact_id)
        .outerjoin(StaffUser, StaffUser.staff_user_id == CollectionContact.created_by)
        .where(CollectionContact.credit_account_id == account_id)
        .order_by(CollectionContact.created_at.desc(), CollectionContact.contact_id.desc())
        .limit(limit)
    ).all()
