"""Credit reports read in SQL: the aging report (totals, keyset pages, CSV) and the statement.

Aging: what is outstanding on each account by days past due. The ledger keeps one row per account
with outstanding charges in `credit_account_aging`, and the organization's totals of those rows in
`credit_aging_totals` (migration 0015). When every row was computed on the report's day, the
totals are a read of 16 rows and the list of accounts an index scan (paged by keyset on (sort
amount, account id), largest overdue first). When some row is from another day (the daily job
has not moved it yet, or the report is asked for another day), those rows are recomputed from
the ledger by `credit_account_buckets` and the totals summed over every account.

Statement: every movement of the account (charges, their cancellations, payments, their
reversals) as one UNION ALL, the running balance from a window function that starts at the
opening balance (one aggregate statement over the movements before the period).
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from portal import clock
from portal.credit.labels import charge_name_sql, label_sql
from portal.credit.models import CreditAgingMonth
from portal.extensions import db

AGING_BUCKETS = (
    ("not_due", "Por vencer"),
    ("days_1_30", "1 a 30 días"),
    ("days_31_60", "31 a 60 días"),
    ("days_61_90", "61 a 90 días"),
    ("days_90_plus", "Más de 90 días"),
)
AGING_PAGE_SIZE = 50
_KEYS = [key for key, _ in AGING_BUCKETS]
AGING_KEYS = tuple(_KEYS)
_COLUMNS = ", ".join(_KEYS)
_STORED = f"SELECT credit_account_id, {_COLUMNS}, overdue, total"


def _accounts_mixed(also: dict[str, str]) -> str:
    """Each account's buckets as of :today when some row was computed on another day: those rows
    are recomputed from the ledger, the others read as stored; `also` adds columns of the aging
    row (name: its expression over the stale row `g`)."""
    stored = "".join(f", {name}" for name in also)
    recomputed = "".join(f", {expression} AS {name}" for name, expression in also.items())
    return f"""
    {_STORED}{stored} FROM credit_account_aging WHERE computed_on = :today
    UNION ALL
    SELECT g.credit_account_id, {", ".join(f"b.{key}" for key in _KEYS)},
           {" + ".join(f"b.{key}" for key in _KEYS[1:])}, {" + ".join(f"b.{key}" for key in _KEYS)}
           {recomputed}
    FROM credit_account_aging g
    CROSS JOIN LATERAL credit_account_buckets(g.credit_account_id, :today) AS b
    WHERE g.computed_on < :today OR g.computed_on > :today
"""


_CURRENT = sa.text(
    "SELECT NOT EXISTS (SELECT 1 FROM credit_account_aging "
    "WHERE computed_on < :today OR computed_on > :today)"
)
_SUMS = ", ".join(f"coalesce(sum({key}), 0) AS {key}" for key in [*_KEYS, "total"])
_ZONE = clock.BUSINESS_ZONE.key
# Each account's buckets as they stood at the end of a past day :today, from the ledger: the
# charges made by then and not cancelled by then, less what payments dated by then paid of
# them, plus what reversals made by then undid (the dates the statement books them on).
_LATE_BUCKETS = (
    "late <= 0",
    "late BETWEEN 1 AND 30",
    "late BETWEEN 31 AND 60",
    "late BETWEEN 61 AND 90",
    "late > 90",
)
_AS_OF_SUMS = ", ".join(
    f"coalesce(sum(outstanding) FILTER (WHERE {condition}), 0) AS {key}"
    for key, condition in zip(_KEYS, _LATE_BUCKETS, strict=True)
)
_ACCOUNTS_AS_OF = f"""
    SELECT credit_account_id, {_AS_OF_SUMS},
           coalesce(sum(outstanding) FILTER (WHERE late > 0), 0) AS overdue,
           sum(outstanding) AS total
    FROM (
        SELECT u.credit_account_id, :today - u.due_date AS late,
               u.amount - coalesce((
                   SELECT sum(x.amount)
                   FROM credit_payment_allocations x
                   JOIN credit_payments p ON p.payment_id = x.payment_id
                   WHERE x.usage_id = u.usage_id
                     AND CASE WHEN x.amount > 0 THEN p.payment_date
                              ELSE (p.reversed_at AT TIME ZONE '{_ZONE}')::date END <= :today
               ), 0) AS outstanding
        FROM credit_usages u
        WHERE (u.created_at AT TIME ZONE '{_ZONE}')::date <= :today
          AND (u.cancelled_at IS NULL
               OR (u.cancelled_at AT TIME ZONE '{_ZONE}')::date > :today)
    ) AS u
    GROUP BY credit_account_id
"""


def account_aging(account_id: uuid.UUID, *, as_of: date) -> dict[str, Decimal]:
    """One account's buckets and total at the end of `as_of` (today or earlier), from the
    ledger as the statement books it."""
    return (
        db.session.execute(
            sa.text(
                f"SELECT {_SUMS} FROM ({_ACCOUNTS_AS_OF}) AS accounts"
                " WHERE credit_account_id = :account"
            ),
            {"account": account_id, "today": as_of},
        )
        .one()
        ._asdict()
    )


def _today(today: date | None) -> date:
    return today or clock.today()


def _current(today: date) -> bool:
    """Whether every row was computed on `today` (the daily job has run, or `today` is now)."""
    return db.session.scalar(_CURRENT, {"today": today})


def aging_summary(*, today: date | None = None) -> dict[str, Decimal]:
    """The organization's outstanding credit per bucket and in total: the kept totals of the
    day, or (some row from another day, or a past day asked for) the sum over every account."""
    today = _today(today)
    if today < clock.today() or not _current(today):
        statement = f"SELECT {_SUMS} FROM ({_accounts_source(today)}) AS accounts"
    else:
        statement = f"SELECT {_SUMS} FROM credit_aging_totals WHERE computed_on = :today"
    return db.session.execute(sa.text(statement), {"today": today}).one()._asdict()


# --- monthly history (the collections dashboard) -------------------------------------------

HISTORY_MONTHS = 12
OVERDUE_KEYS = _KEYS[1:]


def month_end(month: date, today: date) -> date:
    """The last day of `month` (its first day), or today for the current month."""
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return min(following - timedelta(days=1), today)


def history_months(today: date) -> list[date]:
    """The first days of the last HISTORY_MONTHS months, oldest first, this month last."""
    months = [today.replace(day=1)]
    while len(months) < HISTORY_MONTHS:
        months.append((months[-1] - timedelta(days=1)).replace(day=1))
    return months[::-1]


def aging_history(today: date | None = None) -> list[dict]:
    """The last HISTORY_MONTHS months' outstanding credit by bucket, oldest first (a month
    with no row, before the first charge, is all zeros)."""
    today = _today(today)
    months = history_months(today)
    kept = {
        row.month: row
        for row in db.session.scalars(
            sa.select(CreditAgingMonth).where(CreditAgingMonth.month >= months[0])
        )
    }
    zero = Decimal("0.00")
    history = []
    for month in months:
        row = kept.get(month)
        amounts = {key: getattr(row, key) if row else zero for key in _KEYS}
        history.append(
            {"month": month, "computed_on": row.computed_on if row else None}
            | amounts
            | {"overdue": sum(amounts[key] for key in OVERDUE_KEYS)}
        )
    return history


@dataclass(frozen=True)
class AgingPage:
    """One page of accounts (largest first) and the cursor of the next page, if any."""

    rows: list
    next_cursor: str | None


def aging_cursor_parse(cursor: str | None) -> tuple[Decimal, uuid.UUID] | None:
    """The (amount, account id) a "Cargar más" link carries; ValueError for a forged one."""
    if not cursor:
        return None
    amount, _, account_id = cursor.partition("_")
    try:
        return Decimal(amount), uuid.UUID(account_id)
    except (InvalidOperation, ValueError) as error:
        raise ValueError(cursor) from error


def aging_accounts_sql(today: date, *, also: dict[str, str] | None = None) -> str:
    """The SQL of every account's buckets as of `today` (credit_account_id, the buckets, overdue,
    total, and the aging row's columns named in `also`; bind :today), for readers that join it:
    the stored rows when all are current, those from another day recomputed from the ledger
    otherwise (`also` maps each column to its expression over such a stale row `g`)."""
    also = also or {}
    if _current(today):
        return f"{_STORED}{''.join(f', {name}' for name in also)} FROM credit_account_aging"
    return _accounts_mixed(also)


def _accounts_source(today: date) -> str:
    """Every account's buckets at the end of `today`: from the ledger for a past day (balances
    as they stood then), else as `aging_accounts_sql` reads them."""
    return _ACCOUNTS_AS_OF if today < clock.today() else aging_accounts_sql(today)


def _sort_key(bucket: str | None) -> str:
    if bucket is not None and bucket not in _KEYS:
        raise ValueError(bucket)
    return bucket or "overdue"


def _accounts_statement(
    bucket: str | None, today: date, *, after: bool, limit: bool
) -> sa.TextClause:
    key = _sort_key(bucket)  # a known column name, never user text
    conditions = ["total > 0"] + ([f"{key} > 0"] if bucket else [])
    if after:
        conditions.append(f"({key}, credit_account_id) < (:after_amount, :after_id)")
    accounts = _accounts_source(today)
    return sa.text(
        f"""
        WITH listed AS (
            SELECT *, {key} AS sort_amount FROM ({accounts}) AS accounts
            WHERE {" AND ".join(conditions)}
            ORDER BY {key} DESC, credit_account_id DESC
            {"LIMIT :limit" if limit else ""}
        )
        SELECT listed.*, c.customer_id, c.full_name AS name
        FROM listed
        JOIN credit_accounts a ON a.credit_account_id = listed.credit_account_id
        JOIN customers c ON c.customer_id = a.customer_id
        ORDER BY listed.sort_amount DESC, listed.credit_account_id DESC
        """
    )


def _parameters(today: date | None, cursor: str | None) -> dict:
    parameters = {"today": _today(today)}
    position = aging_cursor_parse(cursor)
    if position:
        parameters |= {"after_amount": position[0], "after_id": position[1]}
    return parameters


def aging_page(
    *,
    bucket: str | None = None,
    cursor: str | None = None,
    size: int = AGING_PAGE_SIZE,
    today: date | None = None,
) -> AgingPage:
    """Accounts with a balance, largest overdue (or largest in `bucket`) first, one page."""
    parameters = _parameters(today, cursor) | {"limit": size + 1}
    statement = _accounts_statement(
        bucket, parameters["today"], after=cursor is not None, limit=True
    )
    rows = db.session.execute(statement, parameters).all()
    if len(rows) <= size:
        return AgingPage(rows, None)
    last = rows[size - 1]
    return AgingPage(rows[:size], f"{last.sort_amount}_{last.credit_account_id}")


def aging_rows(*, bucket: str | None = None, today: date | None = None) -> Iterator:
    """Every account of the report in page order, streamed from a server-side cursor (CSV)."""
    parameters = _parameters(today, None)
    statement = _accounts_statement(
        bucket, parameters["today"], after=False, limit=False
    ).execution_options(stream_results=True, yield_per=1000)
    yield from db.session.execute(statement, parameters)


# --- the statement -------------------------------------------------------------------------

_CHARGE = charge_name_sql("u")
_FEE = "u.kind = 'late_fee'"
# Every movement of the account; kind orders the movements of one day as they happen.
_MOVEMENTS = f"""
    movements AS (
        SELECT (u.created_at AT TIME ZONE '{_ZONE}')::date AS on_date, 0 AS kind,
               u.created_at AS at, u.usage_id AS id, NULL::uuid AS payment_id,
               CASE WHEN {_FEE} THEN upper(left({_CHARGE}, 1)) || substr({_CHARGE}, 2)
                    ELSE 'Cargo ' || {_CHARGE} END
               || CASE WHEN u.status = 'cancelled' AND {_FEE} THEN ' (condonado)'
                       WHEN u.status = 'cancelled' THEN ' (anulado)' ELSE '' END AS description,
               u.amount AS charge,
               0::numeric(12, 2) AS credit
        FROM credit_usages u WHERE u.credit_account_id = :account
        UNION ALL
        SELECT (u.cancelled_at AT TIME ZONE '{_ZONE}')::date, 1, u.cancelled_at, u.usage_id, NULL,
               CASE WHEN {_FEE} THEN 'Condonación ' ELSE 'Anulación cargo ' END || {_CHARGE},
               0, u.amount
        FROM credit_usages u
        WHERE u.credit_account_id = :account AND u.cancelled_at IS NOT NULL
        UNION ALL
        SELECT p.payment_date, 2, p.created_at, p.payment_id, p.payment_id,
               CASE WHEN p.kind = 'write_off' THEN 'Castigo de saldo'
                    WHEN p.reversed_at IS NOT NULL THEN 'Pago revertido '
                    ELSE 'Pago ' END
               || coalesce({label_sql("p.payment_method", "payment_method")}, '')
               || coalesce(' ref. ' || nullif(p.payment_reference, ''), ''),
               0, p.amount
        FROM credit_payments p WHERE p.credit_account_id = :account
        UNION ALL
        SELECT (p.reversed_at AT TIME ZONE '{_ZONE}')::date, 3, p.reversed_at, p.payment_id,
               p.payment_id, 'Reversión de pago: ' || coalesce(p.reversal_reason, ''),
               p.amount, 0
        FROM credit_payments p
        WHERE p.credit_account_id = :account AND p.reversed_at IS NOT NULL
    )
"""
_MONEY_TEXT = "'US$' || to_char(abs({}), 'FM999,999,999,990.00')"
_STATEMENT_OPENING = sa.text(
    f"WITH {_MOVEMENTS} SELECT coalesce(sum(charge - credit), 0) FROM movements "
    "WHERE on_date < :start"
)
_STATEMENT_LINES = sa.text(
    f"""
    WITH {_MOVEMENTS},
    period AS (
        SELECT * FROM movements
        WHERE (CAST(:start AS date) IS NULL OR on_date >= :start)
          AND (CAST(:end AS date) IS NULL OR on_date <= :end)
    ),
    -- What each payment paid (or a reversal undid), per payment id in one row: looked up by
    -- key for each line, whatever the planner guesses about how many payments there are.
    allocated AS (
        SELECT jsonb_object_agg(payment_id, jsonb_build_object('applied', applied,
                                                               'undone', undone)) AS by_payment
        FROM (
            SELECT x.payment_id,
                   string_agg({_MONEY_TEXT.format("x.amount")} || ' a '
                              || {_CHARGE}, ', '
                              ORDER BY x.created_at, u.due_date, u.created_at, u.usage_id)
                       FILTER (WHERE x.amount > 0) AS applied,
                   string_agg({_MONEY_TEXT.format("x.amount")} || ' de '
                              || {_CHARGE}, ', '
                              ORDER BY x.created_at, u.due_date, u.created_at, u.usage_id)
                       FILTER (WHERE x.amount < 0) AS undone
            FROM credit_payment_allocations x
            JOIN credit_usages u ON u.usage_id = x.usage_id
            WHERE u.credit_account_id = :account
            GROUP BY x.payment_id
        ) AS per_payment
    ),
    -- Descriptions are completed before the lines are sorted (the lookup table stays out of
    -- the sort).
    described AS MATERIALIZED (
        SELECT m.on_date, m.kind, m.at, m.id, m.charge, m.credit,
               m.description || coalesce(
                   CASE m.kind
                       WHEN 2 THEN ' (' || (a.by_payment -> m.payment_id::text ->> 'applied')
                                   || ')'
                       WHEN 3 THEN ' (deshecho '
                                   || (a.by_payment -> m.payment_id::text ->> 'undone') || ')'
                   END, ''
               ) AS description
        FROM period m
        CROSS JOIN allocated a
    )
    SELECT m.on_date AS "on", m.description, m.charge, m.credit,
           CAST(:opening AS numeric) + sum(m.charge - m.credit) OVER (
               ORDER BY m.on_date, m.kind, m.at, m.id ROWS UNBOUNDED PRECEDING
           ) AS balance
    FROM described m
    ORDER BY m.on_date, m.kind, m.at, m.id
    """
)


def statement_opening(account_id: uuid.UUID, *, start: date | None) -> Decimal:
    """The balance before the period (zero without a start date: no statement run)."""
    if start is None:
        return Decimal("0.00")
    return db.session.scalar(_STATEMENT_OPENING, {"account": account_id, "start": start})


def statement_lines(
    account_id: uuid.UUID, *, start: date | None, end: date | None
) -> tuple[Decimal, list, Decimal]:
    """Opening balance, the period's movements (on, description, charge, credit, balance), and
    the closing balance."""
    opening = statement_opening(account_id, start=start)
    lines = db.session.execute(
        _STATEMENT_LINES,
        {"account": account_id, "start": start, "end": end, "opening": opening},
    ).all()
    closing = lines[-1].balance if lines else opening
    return opening, lines, closing
