"""Late fees and the collections dashboard's monthly history.

Late fees (off by default): the organization's rule in `organization_settings` (a fixed amount
or a monthly percentage of what is overdue, grace days, a cap per fee). A fee is a charge of its
own kind in `credit_usages` (`kind = 'late_fee'`, no order, the month it is for in
`fee_period`), so payments, aging, statements and dunning treat it as the ledger treats every
charge; the unique index on (account, period) makes the nightly posting idempotent. Approvers
may exempt an account (`late_fees_exempt`).

`credit_aging_months` and an index of charges by creation time: the organization's outstanding credit by bucket at the end of each month
(the current month: as of the last nightly run), for the 12-month chart.

Revision ID: 0025_late_fees
Revises: 0024_receipts
Create Date: 2026-12-07
"""

from alembic import op

from portal.schema import grant_app, tenant_rls

revision = "0025_late_fees"
down_revision = "0024_receipts"
branch_labels = None
depends_on = None

BUCKETS = ("not_due", "days_1_30", "days_31_60", "days_61_90", "days_90_plus")


def upgrade():
    op.execute(
        """
        ALTER TABLE organization_settings
            ADD COLUMN late_fee_mode VARCHAR(10) NOT NULL DEFAULT 'off'
                CONSTRAINT check_late_fee_mode CHECK (late_fee_mode IN ('off', 'fixed', 'percent')),
            ADD COLUMN late_fee_amount NUMERIC(12, 2) CHECK (late_fee_amount > 0),
            ADD COLUMN late_fee_percent NUMERIC(5, 2)
                CHECK (late_fee_percent > 0 AND late_fee_percent <= 10),
            ADD COLUMN late_fee_grace_days INTEGER NOT NULL DEFAULT 0
                CHECK (late_fee_grace_days BETWEEN 0 AND 365),
            ADD COLUMN late_fee_cap NUMERIC(12, 2) CHECK (late_fee_cap > 0),
            ADD CONSTRAINT check_late_fee_rule CHECK (
                (late_fee_mode <> 'fixed' OR late_fee_amount IS NOT NULL)
                AND (late_fee_mode <> 'percent' OR late_fee_percent IS NOT NULL))
        """
    )
    op.execute(
        "ALTER TABLE credit_accounts ADD COLUMN late_fees_exempt BOOLEAN NOT NULL DEFAULT false"
    )
    op.execute(
        """
        ALTER TABLE credit_usages
            ADD COLUMN kind VARCHAR(10) NOT NULL DEFAULT 'order',
            ADD COLUMN fee_period DATE,
            ALTER COLUMN order_id DROP NOT NULL,
            ADD CONSTRAINT check_usage_kind CHECK (kind IN ('order', 'late_fee')) NOT VALID,
            ADD CONSTRAINT check_usage_order CHECK ((kind = 'order') = (order_id IS NOT NULL))
                NOT VALID,
            ADD CONSTRAINT check_usage_fee_period
                CHECK ((kind = 'late_fee') = (fee_period IS NOT NULL)
                       AND (fee_period IS NULL OR extract(day FROM fee_period) = 1)) NOT VALID
        """
    )
    for constraint in ("check_usage_kind", "check_usage_order", "check_usage_fee_period"):
        op.execute(f"ALTER TABLE credit_usages VALIDATE CONSTRAINT {constraint}")
    op.execute(
        "CREATE UNIQUE INDEX unique_late_fee_period ON credit_usages "
        "(organization_id, credit_account_id, fee_period) WHERE kind = 'late_fee'"
    )
    # Credit sales of a period (the dashboard's days sales outstanding) by creation time.
    op.execute(
        "CREATE INDEX idx_credit_usage_created ON credit_usages (organization_id, created_at)"
        " INCLUDE (amount, kind, status)"
    )
    amounts = ", ".join(f"{bucket} NUMERIC(14, 2) NOT NULL" for bucket in BUCKETS)
    op.execute(
        f"""
        CREATE TABLE credit_aging_months (
            organization_id UUID NOT NULL REFERENCES organizations (organization_id),
            month DATE NOT NULL CHECK (extract(day FROM month) = 1),
            computed_on DATE NOT NULL,
            {amounts},
            PRIMARY KEY (organization_id, month)
        )
        """
    )
    tenant_rls("credit_aging_months")
    grant_app("credit_aging_months", "SELECT, INSERT, UPDATE")


def downgrade():
    # Late fees have no order: the ledger cannot go back to "every charge has an order" while
    # one exists (waive or reverse them first; nothing is deleted behind the team's back).
    op.execute(
        """
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM credit_usages WHERE kind = 'late_fee') THEN
                RAISE EXCEPTION 'late fees exist: 0025_late_fees cannot be downgraded';
            END IF;
        END $$
        """
    )
    op.execute("DROP TABLE credit_aging_months")
    op.execute("DROP INDEX idx_credit_usage_created")
    op.execute("DROP INDEX unique_late_fee_period")
    op.execute(
        """
        ALTER TABLE credit_usages
            DROP CONSTRAINT check_usage_fee_period,
            DROP CONSTRAINT check_usage_order,
            DROP CONSTRAINT check_usage_kind,
            ALTER COLUMN order_id SET NOT NULL,
            DROP COLUMN fee_period,
            DROP COLUMN kind
        """
    )
    op.execute("ALTER TABLE credit_accounts DROP COLUMN late_fees_exempt")
    op.execute(
        """
        ALTER TABLE organization_settings
            DROP CONSTRAINT check_late_fee_rule,
            DROP COLUMN late_fee_cap,
            DROP COLUMN late_fee_grace_days,
            DROP COLUMN late_fee_percent,
            DROP COLUMN late_fee_amount,
            DROP COLUMN late_fee_mode
        """
    )
