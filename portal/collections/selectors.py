"""Collections reads: the worklist (one row per account with an overdue balance), the contact
log of an account, the collectors one may assign to.

The worklist reads each account's aging row (`credit_account_aging`), which also carries the
collections state the list orders and filters by (migration 0020: collector, last contact, next
action, open promise, broken promise, and `urgency`: 2 a broken promise not followed up, 1 a next
action due today or earlier, 0 the rest). Order: urgency, then amount overdue, largest first;
paged by keyset on (urgency, overdue in cents, account id), all descending, so a page is one
index range.
When some aging row is from another day (the daily job has not run yet), those rows' buckets and
urgency are recomputed for the day (`aging_accounts_sql`).
"""

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from portal import clock
from portal.auth.models import StaffUser
from portal.auth.permissions import PERMISSIONS
from portal.collections.models import (
    CollectionContact,
    CollectionPromise,
    DunningLevel,
    DunningSend,
)
from portal.credit.models import CreditAccount
from portal.credit.reports import (
    AGING_BUCKETS,
    OVERDUE_KEYS,
    aging_accounts_sql,
    aging_history,
    aging_summary,
)
from portal.customers.models import Address, Customer
from portal.extensions import db
from portal.mail.models import EmailOutbox

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


def worklist_cursor_parse(cursor: str | None) -> tuple[int, int, uuid.UUID] | None:
    """The (urgency, overdue in cents, account id) a "Cargar más" link carries (ValueError if
    forged)."""
    if not cursor:
        return None
    try:
        urgency, cents, account_id = cursor.split("_")
        return int(urgency), int(cents), uuid.UUID(account_id)
    except ValueError as error:
        raise ValueError(cursor) from error


# The aging row's collections columns, and how a row from another day recomputes each for :today.
_STATE = {
    name: f"g.{name}"
    for name in (
        "collector_id",
        "next_action_on",
        "last_contact_at",
        "last_channel",
        "last_outcome",
        "promise_amount",
        "promise_due_on",
        "promise_broken",
        "letter_send_id",
    )
} | {
    "urgency": "CASE WHEN g.promise_broken THEN 2 WHEN g.next_action_on <= :today THEN 1 "
    "ELSE 0 END",
    "overdue_cents": f"(({' + '.join(f'b.{key}' for key, _ in OVERDUE_BUCKETS)}) * 100)::bigint",
}
_KEYSET = ("urgency", "overdue_cents", "credit_account_id")  # each descending


def _order_by(alias: str) -> str:
    return ", ".join(f"{alias}.{key} DESC" for key in _KEYSET)


def _conditions(filters: WorklistFilters) -> list[str]:
    conditions = ["g.overdue > 0"]
    if filters.bucket is not None:
        if filters.bucket not in dict(OVERDUE_BUCKETS):
            raise ValueError(filters.bucket)
        conditions.append(f"g.{filters.bucket} > 0")  # a known column name, never user text
    if filters.collector == UNASSIGNED:
        conditions.append("g.collector_id IS NULL")
    elif filters.collector is not None:
        conditions.append("g.collector_id = :collector")
    if filters.quiet:
        conditions.append(
            "(g.last_contact_at IS NULL OR "
            f"(g.last_contact_at AT TIME ZONE '{clock.BUSINESS_ZONE.key}')::date <= :quiet_since)"
        )
    if filters.broken:
        conditions.append("g.urgency = 2")
    return conditions


def _worklist_statement(filters: WorklistFilters, today: date, *, after: bool) -> sa.TextClause:
    conditions = _conditions(filters)
    if after:
        conditions.append(
            "(g.urgency, g.overdue_cents, g.credit_account_id) < (CAST(:after_urgency AS smallint),"
            " CAST(:after_cents AS bigint), CAST(:after_id AS uuid))"
        )
    return sa.text(
        f"""
        WITH listed AS (
            SELECT g.* FROM ({aging_accounts_sql(today, also=_STATE)}) AS g
            WHERE {" AND ".join(conditions)}
            ORDER BY {_order_by("g")}
            LIMIT :limit
        )
        SELECT listed.*, a.customer_id, c.full_name AS name, c.phone,
               s.full_name AS collector_name,
               (SELECT min(u.due_date) FROM credit_usages u
                WHERE u.credit_account_id = listed.credit_account_id
                  AND u.status IN ('pending', 'overdue') AND u.due_date < :today) AS oldest_due
        FROM listed
        JOIN credit_accounts a ON a.credit_account_id = listed.credit_account_id
        JOIN customers c ON c.customer_id = a.customer_id
        LEFT JOIN staff_users s ON s.staff_user_id = listed.collector_id
        ORDER BY {_order_by("listed")}
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
        keys = ("after_urgency", "after_cents", "after_id")
        parameters |= dict(zip(keys, position, strict=True))
    statement = _worklist_statement(filters, today, after=position is not None)
    rows = db.session.execute(statement, parameters).all()
    if len(rows) <= size:
        return WorklistPage(rows, None)
    last = rows[size - 1]
    following = f"{last.urgency}_{last.overdue_cents}_{last.credit_account_id}"
    return WorklistPage(rows[:size], following)


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
    """The account's latest contacts, newest first, with their promise, who logged them, and
    for a reminder its send and e-mail (whose delivery state the log shows)."""
    return db.session.execute(
        sa.select(
            CollectionContact,
            CollectionPromise,
            sa.func.coalesce(StaffUser.full_name, "Sistema").label("author"),
            DunningSend.send_id,
            EmailOutbox.state.label("email_state"),
            EmailOutbox.last_error.label("email_error"),
        )
        .outerjoin(CollectionPromise, CollectionPromise.contact_id == CollectionContact.contact_id)
        .outerjoin(StaffUser, StaffUser.staff_user_id == CollectionContact.created_by)
        .outerjoin(DunningSend, DunningSend.contact_id == CollectionContact.contact_id)
        .outerjoin(EmailOutbox, EmailOutbox.send_id == DunningSend.send_id)
        .where(CollectionContact.credit_account_id == account_id)
        .order_by(CollectionContact.created_at.desc(), CollectionContact.contact_id.desc())
        .limit(limit)
    ).all()


def dunning_levels() -> list[DunningLevel]:
    """The organization's dunning levels, by days overdue."""
    return list(db.session.scalars(sa.select(DunningLevel).order_by(DunningLevel.days_overdue)))


def dunning_letter(send_id: uuid.UUID):
    """A reminder letter to print: the send, its customer and default address (None: no such
    letter in this organization)."""
    return db.session.execute(
        sa.select(DunningSend, Customer, Address)
        .join(CreditAccount, CreditAccount.credit_account_id == DunningSend.credit_account_id)
        .join(Customer, Customer.customer_id == CreditAccount.customer_id)
        .outerjoin(Address, (Address.customer_id == Customer.customer_id) & Address.is_default)
        .where(DunningSend.send_id == send_id, DunningSend.channel == "letter")
    ).first()


# --- the dashboard -------------------------------------------------------------------------

DSO_DAYS = 90  # days sales outstanding over the sales of the last 90 days
_MONTH_FIGURES = sa.text(
    """
    SELECT
        (SELECT count(*) FROM collection_promises WHERE promised_on >= :month) AS made,
        (SELECT count(*) FROM collection_promises
         WHERE state = 'kept' AND settled_at >= :month_starts) AS kept,
        (SELECT count(*) FROM collection_promises
         WHERE state = 'broken' AND settled_at >= :month_starts) AS broken,
        (SELECT coalesce(sum(amount), 0) FROM credit_payments
         WHERE kind = 'payment' AND reversed_at IS NULL
           AND payment_date BETWEEN :month AND :today) AS collected,
        (SELECT coalesce(sum(amount), 0) FROM credit_usages
         WHERE kind = 'order' AND status <> 'cancelled' AND created_at >= :sales_since) AS sales
    """
)


@dataclass(frozen=True)
class Dashboard:
    """The collections dashboard: 12 months of overdue credit by bucket (this month as of
    today), this month's promises and collections, and days sales outstanding."""

    today: date
    history: list[dict]
    receivable: object
    promises: dict
    collected: object
    sales: object
    dso: int | None


def collections_dashboard(*, today: date | None = None) -> Dashboard:
    """The dashboard's figures, set-based (four statements)."""
    today = today or clock.today()
    month = today.replace(day=1)
    history = aging_history(today)
    now = aging_summary(today=today)
    history[-1] |= {key: now[key] for key, _ in AGING_BUCKETS} | {
        "overdue": sum(now[key] for key in OVERDUE_KEYS),
        "computed_on": today,
    }
    figures = db.session.execute(
        _MONTH_FIGURES,
        {
            "month": month,
            "today": today,
            "month_starts": clock.day_start(month),
            "sales_since": clock.day_start(today - timedelta(days=DSO_DAYS - 1)),
        },
    ).one()
    dso = round(now["total"] / figures.sales * DSO_DAYS) if figures.sales else None
    return Dashboard(
        today=today,
        history=history,
        receivable=now["total"],
        promises={"made": figures.made, "kept": figures.kept, "broken": figures.broken},
        collected=figures.collected,
        sales=figures.sales,
        dso=dso,
    )
