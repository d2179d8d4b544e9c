"""Credit reports read in SQL: the aging report (totals, keyset pages, CSV) and the statement.

Aging: what is outstanding on each pending or overdue usage (amount minus what payments still
apply to it) by days past due. The organization totals are one aggregate statement; the list of
accounts is paged by keyset on (sort amount, account id), largest overdue first, so a page costs
one scan of the outstanding usages and a top-N, never rendering or sorting every account in Python.

Statement: every movement of the account (charges, their cancellations, payments, their
reversals) as one UNION ALL, the running balance from a window function that starts at the
opening balance (one aggregate statement over the movements before the period).
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from portal import clock
from portal.credit.labels import label_sql
from portal.extensions import db

AGING_BUCKETS = (
    ("not_due", "Por vencer"),
    ("days_1_30", "1 a 30 días"),
    ("days_31_60", "31 a 60 días"),
    ("days_61_90", "61 a 90 días"),
    ("days_90_plus", "Más de 90 días"),
)
AGING_PAGE_SIZE = 50
_BUCKET_FILTERS = {
    "not_due": "late <= 0",
    "days_1_30": "late BETWEEN 1 AND 30",
    "days_31_60": "late BETWEEN 31 AND 60",
    "days_61_90": "late BETWEEN 61 AND 90",
    "days_90_plus": "late > 90",
}
_BUCKET_SUMS = ",\n".join(
    f"coalesce(sum(outstanding) FILTER (WHERE {condition}), 0) AS {key}"
    for key, condition in _BUCKET_FILTERS.items()
)
# Outstanding usages with what payments still apply to each (reversals are negative rows).
_OWED = """
    owed AS (
        SELECT u.credit_account_id, CAST(:today AS date) - u.due_date AS late,
               u.amount - coalesce(applied.amount, 0) AS outstanding
        FROM credit_usages u
        LEFT JOIN (
            SELECT x.usage_id, sum(x.amount) AS amount
            FROM credit_payment_allocations x
            JOIN credit_usages o ON o.usage_id = x.usage_id
                AND o.status IN ('pending', 'overdue')
            GROUP BY x.usage_id
        ) AS applied ON applied.usage_id = u.usage_id
        WHERE u.status IN ('pending', 'overdue')
    )
"""
# The bucket amounts of one listed account, read through idx_credit_usage_aging.
_ACCOUNT_BUCKETS = f"""
    SELECT {_BUCKET_SUMS}, sum(outstanding) AS total
    FROM (
        SELECT CAST(:today AS date) - u.due_date AS late,
               u.amount - coalesce((SELECT sum(x.amount) FROM credit_payment_allocations x
                                    WHERE x.usage_id = u.usage_id), 0) AS outstanding
        FROM credit_usages u
        WHERE u.credit_account_id = listed.credit_account_id
          AND u.status IN ('pending', 'overdue')
    ) AS one_account
"""


def _today(today: date | None) -> date:
    return today or clock.today()


def aging_summary(*, today: date | None = None) -> dict[str, Decimal]:
    """The organization's outstanding credit per bucket and in total (one statement)."""
    row = db.session.execute(
        sa.text(
            f"WITH {_OWED} SELECT {_BUCKET_SUMS}, coalesce(sum(outstanding), 0) AS total FROM owed"
        ),
        {"today": _today(today)},
    ).one()
    return row._asdict()


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


def _sort_key(bucket: str | None) -> str:
    if bucket is not None and bucket not in _BUCKET_FILTERS:
        raise ValueError(bucket)
    return bucket or "overdue"


def _accounts_statement(bucket: str | None, *, after: bool, limit: bool) -> sa.TextClause:
    # Only the sort amount is summed over every outstanding usage; the five buckets are read
    # for the listed accounts alone.
    key = _sort_key(bucket)  # a known column name, never user text
    amount = f"coalesce(sum(outstanding) FILTER (WHERE {_BUCKET_FILTERS.get(key, 'late > 0')}), 0)"
    conditions = ["sum(outstanding) > 0"] + ([f"{amount} > 0"] if bucket else [])
    if after:
        conditions.append(f"({amount}, credit_account_id) < (:after_amount, :after_id)")
    return sa.text(
        f"""
        WITH {_OWED},
        listed AS (
            SELECT credit_account_id, {amount} AS sort_amount
            FROM owed
            GROUP BY credit_account_id
            HAVING {" AND ".join(conditions)}
            ORDER BY sort_amount DESC, credit_account_id DESC
            {"LIMIT :limit" if limit else ""}
        )
        SELECT listed.credit_account_id, listed.sort_amount, buckets.*,
               c.customer_id, c.first_name || ' ' || c.last_name AS name
        FROM listed
        CROSS JOIN LATERAL ({_ACCOUNT_BUCKETS}) AS buckets
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
    rows = db.session.execute(
        _accounts_statement(bucket, after=cursor is not None, limit=True), parameters
    ).all()
    if len(rows) <= size:
        return AgingPage(rows, None)
    last = rows[size - 1]
    return AgingPage(rows[:size], f"{last.sort_amount}_{last.credit_account_id}")


def aging_rows(*, bucket: str | None = None, today: date | None = None) -> Iterator:
    """Every account of the report in page order, streamed from a server-side cursor (CSV)."""
    statement = _accounts_statement(bucket, after=False, limit=False).execution_options(
        stream_results=True, yield_per=1000
    )
    yield from db.session.execute(statement, _parameters(today, None))


# --- the statement -------------------------------------------------------------------------

_ZONE = clock.BUSINESS_ZONE.key
# How staff know a charge's order: its number, else the start of the internal id.
_ORDER = (
    "coalesce((SELECT o.order_number FROM purchases o WHERE o.order_id = u.order_id), "
    "left(u.order_id::text, 8))"
)
# Every movement of the account; kind orders the movements of one day as they happen.
_MOVEMENTS = f"""
    movements AS (
        SELECT (u.created_at AT TIME ZONE '{_ZONE}')::date AS on_date, 0 AS kind,
               u.created_at AS at, u.usage_id AS id, NULL::uuid AS payment_id,
               'Cargo orden ' || {_ORDER} || CASE WHEN u.status = 'cancelled'
                   THEN ' (anulado)' ELSE '' END AS description, u.amount AS charge,
               0::numeric(12, 2) AS credit
        FROM credit_usages u WHERE u.credit_account_id = :account
        UNION ALL
        SELECT (u.cancelled_at AT TIME ZONE '{_ZONE}')::date, 1, u.cancelled_at, u.usage_id, NULL,
               'Anulación cargo orden ' || {_ORDER}, 0, u.amount
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
    )
    SELECT m.on_date AS "on",
           m.description || coalesce(
               CASE m.kind WHEN 2 THEN ' (' || allocated.applied || ')'
                           WHEN 3 THEN ' (deshecho ' || allocated.undone || ')' END, ''
           ) AS description,
           m.charge, m.credit,
           CAST(:opening AS numeric) + sum(m.charge - m.credit) OVER (
               ORDER BY m.on_date, m.kind, m.at, m.id ROWS UNBOUNDED PRECEDING
           ) AS balance
    FROM period m
    LEFT JOIN (
        SELECT x.payment_id,
               string_agg({_MONEY_TEXT.format("x.amount")} || ' a orden '
                          || {_ORDER}, ', '
                          ORDER BY x.created_at, u.due_date, u.created_at, u.usage_id)
                   FILTER (WHERE x.amount > 0) AS applied,
               string_agg({_MONEY_TEXT.format("x.amount")} || ' de orden '
                          || {_ORDER}, ', '
                          ORDER BY x.created_at, u.due_date, u.created_at, u.usage_id)
                   FILTER (WHERE x.amount < 0) AS undone
        FROM credit_payment_allocations x
        JOIN credit_usages u ON u.usage_id = x.usage_id
        WHERE u.credit_account_id = :account
        GROUP BY x.payment_id
    ) AS allocated ON allocated.payment_id = m.payment_id
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
