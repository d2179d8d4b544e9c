"""Late fees: posted by the nightly job under the organization's rule, waived by approvers.

A fee is a charge of kind `late_fee` for one month (`fee_period`, its first day), due the day it
is posted: payments, aging, statements and dunning treat it like any charge. The rule
(`organization_settings.late_fee_*`, off by default) is a fixed amount or a monthly percentage
of what the account's order charges have been overdue for longer than the grace days — never of
other fees — at most the cap. A fee never takes an account over its limit (the ledger's rule
for every charge): it is cut to the credit available and not posted when none is.
"""

import uuid
from datetime import date

import sqlalchemy as sa

from portal import clock
from portal.audit import SYSTEM_ACTOR, audit_record
from portal.auth.models import StaffUser
from portal.credit.models import CreditAccount, CreditUsage
from portal.credit.services import account_get, usage_get, usage_void
from portal.extensions import db
from portal.transaction import atomic

# The accounts that owe a fee for :period (their rows locked, so no charge or payment changes
# what they may still use before the fee is posted).
_LIABLE = """
    SELECT a.credit_account_id
    FROM credit_accounts a
    JOIN organization_settings s ON s.late_fee_mode <> 'off'
    WHERE a.status IN ('approved', 'suspended') AND NOT a.late_fees_exempt
      AND EXISTS (SELECT 1 FROM credit_usages u
                  WHERE u.credit_account_id = a.credit_account_id AND u.kind = 'order'
                    AND u.status IN ('pending', 'overdue')
                    AND u.due_date < CAST(:today AS date) - s.late_fee_grace_days)
      AND NOT EXISTS (SELECT 1 FROM credit_usages f
                      WHERE f.credit_account_id = a.credit_account_id
                        AND f.kind = 'late_fee' AND f.fee_period = :period)
    ORDER BY a.credit_account_id
    FOR UPDATE OF a
"""
# Each liable account's fee, posted once per period (the unique index on the period makes a
# second run, or a second worker, post nothing), and the credit it uses.
_POST = """
    WITH settings AS (
        SELECT late_fee_mode, late_fee_amount, late_fee_percent, late_fee_grace_days,
               coalesce(late_fee_cap, 'Infinity') AS cap
        FROM organization_settings
    ),
    overdue AS (
        SELECT u.credit_account_id,
               sum(u.amount - coalesce((SELECT sum(x.amount) FROM credit_payment_allocations x
                                        WHERE x.usage_id = u.usage_id), 0)) AS overdue
        FROM credit_usages u CROSS JOIN settings s
        WHERE u.credit_account_id = ANY(CAST(:accounts AS uuid[])) AND u.kind = 'order'
          AND u.status IN ('pending', 'overdue')
          AND u.due_date < CAST(:today AS date) - s.late_fee_grace_days
        GROUP BY u.credit_account_id
    ),
    fees AS (
        SELECT a.organization_id, a.credit_account_id, o.overdue,
               least(CASE s.late_fee_mode WHEN 'fixed' THEN s.late_fee_amount
                                          ELSE round(o.overdue * s.late_fee_percent / 100, 2)
                     END,
                     s.cap, a.credit_limit - a.credit_used) AS amount
        FROM overdue o
        JOIN credit_accounts a ON a.credit_account_id = o.credit_account_id
        CROSS JOIN settings s
        WHERE o.overdue > 0
    ),
    posted AS (
        INSERT INTO credit_usages (organization_id, credit_account_id, kind, fee_period, amount,
                                   due_date, status)
        SELECT organization_id, credit_account_id, 'late_fee', :period, amount, :today,
               'pending'
        FROM fees WHERE amount > 0
        ON CONFLICT (organization_id, credit_account_id, fee_period) WHERE kind = 'late_fee'
        DO NOTHING
        RETURNING usage_id, credit_account_id, amount
    ),
    charged AS (
        UPDATE credit_accounts a SET credit_used = a.credit_used + p.amount
        FROM posted p WHERE a.credit_account_id = p.credit_account_id
        RETURNING a.credit_account_id
    )
    SELECT p.usage_id, p.credit_account_id, p.amount, f.overdue
    FROM posted p JOIN fees f ON f.credit_account_id = p.credit_account_id
    WHERE p.credit_account_id IN (SELECT credit_account_id FROM charged)
"""


def fee_period(day: date) -> date:
    """The month a fee posted on `day` is for (its first day)."""
    return day.replace(day=1)


@atomic
def late_fees_post(*, today: date | None = None) -> int:
    """Nightly: post this month's late fee on every liable account that has none yet; each fee
    audited. Nothing when the organization's rule is off. Returns how many were posted."""
    today = today or clock.today()
    period = fee_period(today)
    parameters = {"today": today, "period": period}
    accounts = list(db.session.scalars(sa.text(_LIABLE), parameters))
    if not accounts:
        return 0
    posted = db.session.execute(sa.text(_POST), parameters | {"accounts": accounts}).all()
    for fee in posted:
        audit_record(
            action="credit.late_fee_posted",
            entity_type="credit_account",
            entity_id=fee.credit_account_id,
            after={
                "usage_id": fee.usage_id,
                "fee_period": period,
                "amount": fee.amount,
                "overdue": fee.overdue,
            },
            actor=SYSTEM_ACTOR,
        )
    return len(posted)


@atomic
def late_fee_waive(*, usage_id: uuid.UUID, reason: str, actor: StaffUser) -> CreditUsage:
    """An approver waives an unpaid late fee: it is voided (as a cancelled charge is) and the
    credit comes back; audited with the reason."""
    usage = usage_get(usage_id)
    if usage is None or usage.kind != "late_fee":
        raise LookupError(usage_id)
    status = usage.status
    waived = usage_void(
        usage_id=usage_id,
        account_id=usage.credit_account_id,
        statuses=("pending", "overdue"),
        refusal="Solo se condona un recargo sin pagos aplicados: revierta antes el pago.",
    )
    audit_record(
        action="credit.late_fee_waived",
        entity_type="credit_account",
        entity_id=usage.credit_account_id,
        before={"usage_id": usage_id, "status": status},
        after={"usage_id": usage_id, "status": "cancelled", "amount": waived, "reason": reason},
        actor=actor,
    )
    return usage_get(usage_id)


@atomic
def late_fees_exemption_set(
    *, account_id: uuid.UUID, exempt: bool, reason: str, actor: StaffUser
) -> CreditAccount:
    """An approver exempts an account from late fees (or ends the exemption); audited."""
    account = account_get(account_id, for_update=True)
    if account is None:
        raise LookupError(account_id)
    if account.late_fees_exempt != exempt:
        audit_record(
            action="credit.late_fees_exemption",
            entity_type="credit_account",
            entity_id=account_id,
            before={"late_fees_exempt": account.late_fees_exempt},
            after={"late_fees_exempt": exempt, "reason": reason},
            actor=actor,
        )
        account.late_fees_exempt = exempt
        db.session.flush()
    return account
