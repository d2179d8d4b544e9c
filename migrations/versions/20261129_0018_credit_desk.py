"""Credit desk: approval levels, decisions requesters see, closure, write-offs, order numbers.

- `organization_settings.approval_level`: above this limit (US$10,000 unless an org admin
  changes it) the deciding approver must also be an org admin.
- `credit_requests`: `decision_seen_at` (the requester saw the decision; existing decisions count
  as seen), kind `write_off` with its `write_off_amount` (no requested limit), and a named CHECK
  that a pending request has a requester, a request date and a requested limit (its amount for a
  write-off).
- `credit_accounts`: state `closed` (`closed_at`, `closed_by`, `closure_reason`), never with a
  balance.
- `credit_payments.kind`: `payment` or `write_off`. A write-off is allocated FIFO through
  `credit_payment_allocations` like a payment (so outstanding = amount - allocations holds
  everywhere), has no method and is never reversed; the usages it settles are `written_off`.
- `purchases.order_number`: the number staff know an order by (e.g. F-0012345), from the order
  events; found by number, and by prefix among a customer's orders.

Revision ID: 0018_credit_desk
Revises: 0017_api
Create Date: 2026-11-29
"""

from alembic import op

from portal.schema import in_every_organization

revision = "0018_credit_desk"
down_revision = "0017_api"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        ALTER TABLE organization_settings
            ADD COLUMN approval_level NUMERIC(12, 2) NOT NULL DEFAULT 10000.00
                CHECK (approval_level > 0)
        """
    )
    op.execute(
        """
        ALTER TABLE credit_requests
            ADD COLUMN decision_seen_at TIMESTAMPTZ,
            ADD COLUMN write_off_amount NUMERIC(12, 2) CHECK (write_off_amount > 0),
            ALTER COLUMN requested_limit DROP NOT NULL,
            DROP CONSTRAINT check_credit_request_kind,
            ADD CONSTRAINT check_credit_request_kind
                CHECK (kind IN ('new_line', 'increase', 'write_off')),
            ADD CONSTRAINT check_credit_request_amount CHECK (
                (kind = 'write_off') = (write_off_amount IS NOT NULL)
                AND (kind = 'write_off') = (requested_limit IS NULL)
            ),
            ADD CONSTRAINT check_credit_request_pending_complete CHECK (
                state <> 'pending' OR (
                    requested_by IS NOT NULL AND requested_at IS NOT NULL
                    AND coalesce(requested_limit, write_off_amount) IS NOT NULL
                )
            ),
            ADD CONSTRAINT check_credit_request_seen
                CHECK (decision_seen_at IS NULL OR state <> 'pending'),
            DROP CONSTRAINT check_credit_request_decided,
            ADD CONSTRAINT check_credit_request_decided CHECK (
                (state = 'pending') = (decided_at IS NULL)
                AND (state <> 'pending' OR decided_by IS NULL)
                AND (state = 'approved' AND kind <> 'write_off') = (approved_limit IS NOT NULL)
            )
        """
    )
    # Decisions made before requesters could see them are not news.
    in_every_organization(
        "UPDATE credit_requests SET decision_seen_at = decided_at WHERE state <> 'pending';"
    )
    op.execute(
        "CREATE INDEX idx_credit_request_unseen ON credit_requests "
        "(organization_id, requested_by) WHERE state <> 'pending' AND decision_seen_at IS NULL"
    )
    op.execute(
        """
        ALTER TABLE credit_accounts
            ADD COLUMN closed_at TIMESTAMPTZ,
            ADD COLUMN closed_by UUID,
            ADD COLUMN closure_reason TEXT,
            ADD CONSTRAINT fk_credit_closed_by FOREIGN KEY (organization_id, closed_by)
                REFERENCES staff_users (organization_id, staff_user_id),
            DROP CONSTRAINT check_credit_status,
            ADD CONSTRAINT check_credit_status
                CHECK (status IN ('pending', 'approved', 'suspended', 'cancelled', 'closed')),
            ADD CONSTRAINT check_credit_closed CHECK (
                (status = 'closed') = (closed_at IS NOT NULL)
                AND (status <> 'closed' OR credit_used = 0)
            )
        """
    )
    op.execute(
        """
        ALTER TABLE credit_usages
            DROP CONSTRAINT check_usage_status,
            ADD CONSTRAINT check_usage_status
                CHECK (status IN ('pending', 'paid', 'overdue', 'cancelled', 'written_off'))
        """
    )
    op.execute(
        """
        ALTER TABLE credit_payments
            ADD COLUMN kind VARCHAR(20) NOT NULL DEFAULT 'payment',
            ALTER COLUMN payment_method DROP NOT NULL,
            ADD CONSTRAINT check_payment_kind CHECK (kind IN ('payment', 'write_off')),
            ADD CONSTRAINT check_payment_kind_method
                CHECK ((kind = 'payment') = (payment_method IS NOT NULL)),
            ADD CONSTRAINT check_write_off_not_reversed
                CHECK (kind = 'payment' OR reversed_at IS NULL)
        """
    )
    op.execute("ALTER TABLE purchases ADD COLUMN order_number VARCHAR(30)")
    # Not unique: a number the Orders service reused must not stop the worker's batch; the
    # charge form refuses a number that is ambiguous or another customer's.
    op.execute(
        "CREATE INDEX idx_purchases_order_number ON purchases "
        "(organization_id, order_number) WHERE order_number IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX idx_purchases_customer_number ON purchases "
        "(organization_id, customer_id, order_number text_pattern_ops) "
        "WHERE order_number IS NOT NULL"
    )


def downgrade():
    # The older schema has no closed accounts, write-offs or write-off requests: refuse rather
    # than guess what they should become.
    in_every_organization(
        """
        IF EXISTS (SELECT 1 FROM credit_accounts WHERE status = 'closed')
           OR EXISTS (SELECT 1 FROM credit_payments WHERE kind = 'write_off')
           OR EXISTS (SELECT 1 FROM credit_requests WHERE kind = 'write_off') THEN
            RAISE EXCEPTION 'closed accounts or write-offs exist: downgrade refused';
        END IF;
        """
    )
    op.execute("DROP INDEX idx_purchases_customer_number")
    op.execute("DROP INDEX idx_purchases_order_number")
    op.execute("ALTER TABLE purchases DROP COLUMN order_number")
    op.execute(
        """
        ALTER TABLE credit_payments
            DROP CONSTRAINT check_write_off_not_reversed,
            DROP CONSTRAINT check_payment_kind_method,
            DROP CONSTRAINT check_payment_kind,
            ALTER COLUMN payment_method SET NOT NULL,
            DROP COLUMN kind
        """
    )
    op.execute(
        """
        ALTER TABLE credit_usages
            DROP CONSTRAINT check_usage_status,
            ADD CONSTRAINT check_usage_status
                CHECK (status IN ('pending', 'paid', 'overdue', 'cancelled'))
        """
    )
    op.execute(
        """
        ALTER TABLE credit_accounts
            DROP CONSTRAINT check_credit_closed,
            DROP CONSTRAINT check_credit_status,
            ADD CONSTRAINT check_credit_status
                CHECK (status IN ('pending', 'approved', 'suspended', 'cancelled')),
            DROP CONSTRAINT fk_credit_closed_by,
            DROP COLUMN closure_reason,
            DROP COLUMN closed_by,
            DROP COLUMN closed_at
        """
    )
    op.execute("DROP INDEX idx_credit_request_unseen")
    op.execute(
        """
        ALTER TABLE credit_requests
            DROP CONSTRAINT check_credit_request_decided,
            ADD CONSTRAINT check_credit_request_decided CHECK (
                (state = 'pending') = (decided_at IS NULL)
                AND (state <> 'pending' OR decided_by IS NULL)
                AND (state = 'approved') = (approved_limit IS NOT NULL)
            ),
            DROP CONSTRAINT check_credit_request_seen,
            DROP CONSTRAINT check_credit_request_pending_complete,
            DROP CONSTRAINT check_credit_request_amount,
            DROP CONSTRAINT check_credit_request_kind,
            ADD CONSTRAINT check_credit_request_kind CHECK (kind IN ('new_line', 'increase')),
            ALTER COLUMN requested_limit SET NOT NULL,
            DROP COLUMN write_off_amount,
            DROP COLUMN decision_seen_at
        """
    )
    op.execute("ALTER TABLE organization_settings DROP COLUMN approval_level")
