"""Credit ledger: requests with four-eyes, payment idempotency and reversal, FIFO allocations.

Revision ID: 0003_credit_ledger
Revises: 0002_customer_search
Create Date: 2026-11-28
"""

from alembic import op

from portal.schema import app_role, grant_app, tenant_rls

revision = "0003_credit_ledger"
down_revision = "0002_customer_search"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        ALTER TABLE credit_accounts
            ADD COLUMN requested_by UUID,
            ADD COLUMN requested_at TIMESTAMPTZ,
            ADD COLUMN requested_limit NUMERIC(12, 2) CHECK (requested_limit > 0),
            ADD COLUMN requested_term_days INTEGER CHECK (requested_term_days BETWEEN 1 AND 365),
            ADD COLUMN request_notes TEXT,
            ADD COLUMN decided_by UUID,
            ADD COLUMN decided_at TIMESTAMPTZ,
            ADD CONSTRAINT fk_credit_requested_by FOREIGN KEY (organization_id, requested_by)
                REFERENCES staff_users (organization_id, staff_user_id),
            ADD CONSTRAINT fk_credit_decided_by FOREIGN KEY (organization_id, decided_by)
                REFERENCES staff_users (organization_id, staff_user_id),
            -- Four-eyes, in the database too: whoever requested never decides.
            ADD CONSTRAINT check_credit_four_eyes CHECK (
                decided_by IS NULL OR requested_by IS NULL OR decided_by <> requested_by
            )
        """
    )
    op.execute(
        "CREATE INDEX idx_credit_queue ON credit_accounts (organization_id, requested_at) "
        "WHERE status = 'pending'"
    )
    op.execute(
        """
        ALTER TABLE credit_usages
            ADD COLUMN created_by UUID,
            ADD COLUMN cancelled_at TIMESTAMPTZ,
            ADD CONSTRAINT fk_usage_created_by FOREIGN KEY (organization_id, created_by)
                REFERENCES staff_users (organization_id, staff_user_id),
            ADD CONSTRAINT check_usage_paid_at CHECK ((status = 'paid') = (paid_at IS NOT NULL))
        """
    )
    op.execute(
        "CREATE INDEX idx_credit_usage_outstanding ON credit_usages "
        "(organization_id, credit_account_id, due_date, created_at) "
        "WHERE status IN ('pending', 'overdue')"
    )
    op.execute(
        """
        ALTER TABLE credit_payments
            ADD COLUMN idempotency_key UUID NOT NULL DEFAULT gen_random_uuid(),
            ADD COLUMN created_by UUID,
            ADD COLUMN reversed_at TIMESTAMPTZ,
            ADD COLUMN reversed_by UUID,
            ADD COLUMN reversal_reason TEXT,
            ADD CONSTRAINT unique_org_payment_key UNIQUE (organization_id, idempotency_key),
            ADD CONSTRAINT fk_payment_created_by FOREIGN KEY (organization_id, created_by)
                REFERENCES staff_users (organization_id, staff_user_id),
            ADD CONSTRAINT fk_payment_reversed_by FOREIGN KEY (organization_id, reversed_by)
                REFERENCES staff_users (organization_id, staff_user_id),
            ADD CONSTRAINT check_payment_reversal CHECK (
                (reversed_at IS NULL) = (reversed_by IS NULL)
                AND (reversed_at IS NULL OR length(btrim(reversal_reason)) > 0)
            )
        """
    )
    op.execute("ALTER TABLE credit_payments ALTER COLUMN idempotency_key DROP DEFAULT")
    op.execute(
        """
        CREATE TABLE credit_payment_allocations (
            organization_id UUID NOT NULL,
            allocation_id UUID NOT NULL DEFAULT gen_random_uuid(),
            payment_id UUID NOT NULL,
            usage_id UUID NOT NULL,
            amount NUMERIC(12, 2) NOT NULL CHECK (amount > 0),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, allocation_id),
            CONSTRAINT unique_payment_usage UNIQUE (organization_id, payment_id, usage_id),
            FOREIGN KEY (organization_id, payment_id)
                REFERENCES credit_payments (organization_id, payment_id),
            FOREIGN KEY (organization_id, usage_id)
                REFERENCES credit_usages (organization_id, usage_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX idx_allocation_usage ON credit_payment_allocations (organization_id, usage_id)"
    )
    tenant_rls("credit_payment_allocations")
    grant_app("credit_payment_allocations", "SELECT, INSERT, DELETE")

    # The scheduler fans jobs out per organization; this is the only list of them it may read.
    op.execute(
        "CREATE POLICY organizations_listing ON organizations FOR SELECT TO CURRENT_USER USING (true)"
    )
    op.execute(
        """
        CREATE FUNCTION organization_ids() RETURNS SETOF UUID
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            SELECT organization_id FROM public.organizations ORDER BY organization_id
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION organization_ids() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION organization_ids() TO {app_role()}")


def downgrade():
    op.execute("DROP FUNCTION organization_ids()")
    op.execute("DROP POLICY organizations_listing ON organizations")
    op.execute("DROP TABLE credit_payment_allocations")
    op.execute(
        """
        ALTER TABLE credit_payments
            DROP CONSTRAINT check_payment_reversal,
            DROP CONSTRAINT fk_payment_reversed_by,
            DROP CONSTRAINT fk_payment_created_by,
            DROP CONSTRAINT unique_org_payment_key,
            DROP COLUMN reversal_reason,
            DROP COLUMN reversed_by,
            DROP COLUMN reversed_at,
            DROP COLUMN created_by,
            DROP COLUMN idempotency_key
        """
    )
    op.execute("DROP INDEX idx_credit_usage_outstanding")
    op.execute(
        """
        ALTER TABLE credit_usages
            DROP CONSTRAINT check_usage_paid_at,
            DROP CONSTRAINT fk_usage_created_by,
            DROP COLUMN cancelled_at,
            DROP COLUMN created_by
        """
    )
    op.execute("DROP INDEX idx_credit_queue")
    op.execute(
        """
        ALTER TABLE credit_accounts
            DROP CONSTRAINT check_credit_four_eyes,
            DROP CONSTRAINT fk_credit_decided_by,
            DROP CONSTRAINT fk_credit_requested_by,
            DROP COLUMN decided_at,
            DROP COLUMN decided_by,
            DROP COLUMN request_notes,
            DROP COLUMN requested_term_days,
            DROP COLUMN requested_limit,
            DROP COLUMN requested_at,
            DROP COLUMN requested_by
        """
    )
