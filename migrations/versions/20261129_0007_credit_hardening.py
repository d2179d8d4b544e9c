"""Credit hardening: requests with history, organization settings, append-only allocations.

- `credit_requests`: every request (a new line or a limit increase) with who asked what, when and
  why, and who decided, when and with which notes. The request columns of `credit_accounts` move
  here (every account that had a requester becomes one request row); the account keeps its state.
  A pending account must have a pending new-line request: a deferred constraint trigger, because
  the rule spans two tables. Pending accounts without a requester or a requested limit (the old
  demo seed made them) cannot be decided; they become `cancelled` with a note saying why.
- `organization_settings`: one row per organization with typed columns (`max_credit_limit`,
  US$50,000 unless an org admin changes it); created on first use.
- `credit_payment_allocations` is append-only: a reversal adds one negative row per allocation it
  undoes (`reverses_allocation_id`), so SUM(amount) per usage is what is still applied.

Revision ID: 0007_credit_hardening
Revises: 0006_auth_hardening
Create Date: 2026-11-29
"""

from alembic import op

from portal.schema import app_role, grant_app, in_every_organization, tenant_rls

revision = "0007_credit_hardening"
down_revision = "0006_auth_hardening"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE organization_settings (
            organization_id UUID NOT NULL REFERENCES organizations (organization_id),
            max_credit_limit NUMERIC(12, 2) NOT NULL DEFAULT 50000.00
                CHECK (max_credit_limit > 0),
            updated_by UUID,
            updated_at TIMESTAMPTZ,
            PRIMARY KEY (organization_id),
            FOREIGN KEY (organization_id, updated_by)
                REFERENCES staff_users (organization_id, staff_user_id)
        )
        """
    )
    tenant_rls("organization_settings")
    grant_app("organization_settings", "SELECT, INSERT, UPDATE")

    op.execute(
        """
        CREATE TABLE credit_requests (
            organization_id UUID NOT NULL,
            credit_request_id UUID NOT NULL DEFAULT gen_random_uuid(),
            credit_account_id UUID NOT NULL,
            kind VARCHAR(20) NOT NULL,
            requested_limit NUMERIC(12, 2) NOT NULL CHECK (requested_limit > 0),
            requested_term_days INTEGER CHECK (requested_term_days BETWEEN 1 AND 365),
            reason TEXT NOT NULL CHECK (length(btrim(reason)) > 0),
            requested_by UUID NOT NULL,
            requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            state VARCHAR(20) NOT NULL DEFAULT 'pending',
            decided_by UUID,
            decided_at TIMESTAMPTZ,
            decision_notes TEXT,
            approved_limit NUMERIC(12, 2) CHECK (approved_limit > 0),
            approved_term_days INTEGER CHECK (approved_term_days BETWEEN 1 AND 365),
            PRIMARY KEY (organization_id, credit_request_id),
            FOREIGN KEY (organization_id, credit_account_id)
                REFERENCES credit_accounts (organization_id, credit_account_id),
            FOREIGN KEY (organization_id, requested_by)
                REFERENCES staff_users (organization_id, staff_user_id),
            FOREIGN KEY (organization_id, decided_by)
                REFERENCES staff_users (organization_id, staff_user_id),
            CONSTRAINT check_credit_request_kind CHECK (kind IN ('new_line', 'increase')),
            CONSTRAINT check_credit_request_state
                CHECK (state IN ('pending', 'approved', 'rejected')),
            CONSTRAINT check_credit_request_term
                CHECK (kind <> 'new_line' OR requested_term_days IS NOT NULL),
            CONSTRAINT check_credit_request_decided CHECK (
                (state = 'pending') = (decided_at IS NULL)
                AND (state <> 'pending' OR decided_by IS NULL)
                AND (state = 'approved') = (approved_limit IS NOT NULL)
            ),
            -- Four-eyes, in the database too: whoever requested never decides.
            CONSTRAINT check_credit_request_four_eyes CHECK (decided_by <> requested_by)
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX unique_credit_request_pending ON credit_requests "
        "(organization_id, credit_account_id) WHERE state = 'pending'"
    )
    op.execute(
        "CREATE INDEX idx_credit_request_queue ON credit_requests "
        "(organization_id, requested_at) WHERE state = 'pending'"
    )
    op.execute(
        "CREATE INDEX idx_credit_request_account ON credit_requests "
        "(organization_id, credit_account_id, requested_at)"
    )
    op.execute(
        "CREATE INDEX idx_credit_request_requester ON credit_requests "
        "(organization_id, requested_by, requested_at)"
    )
    tenant_rls("credit_requests")
    grant_app("credit_requests", "SELECT, INSERT, UPDATE")

    in_every_organization(
        """
        INSERT INTO credit_requests (
            organization_id, credit_account_id, kind, requested_limit, requested_term_days,
            reason, requested_by, requested_at, state, decided_by, decided_at, decision_notes,
            approved_limit, approved_term_days)
        SELECT organization_id, credit_account_id, 'new_line', requested_limit,
               coalesce(requested_term_days, payment_term_days),
               coalesce(nullif(btrim(request_notes), ''), 'Sin justificación registrada'),
               requested_by, coalesce(requested_at, created_at),
               CASE status WHEN 'pending' THEN 'pending'
                           WHEN 'cancelled' THEN 'rejected' ELSE 'approved' END,
               CASE WHEN status <> 'pending' THEN coalesce(decided_by, approved_by) END,
               CASE WHEN status <> 'pending'
                    THEN coalesce(decided_at, approved_at::timestamptz, updated_at, created_at)
               END,
               CASE WHEN status <> 'pending' THEN approval_notes END,
               CASE WHEN status IN ('approved', 'suspended')
                    THEN coalesce(nullif(credit_limit, 0), requested_limit) END,
               CASE WHEN status IN ('approved', 'suspended') THEN payment_term_days END
        FROM credit_accounts
        WHERE requested_by IS NOT NULL AND requested_limit IS NOT NULL;
        UPDATE credit_accounts
        SET status = 'cancelled', updated_at = now(),
            approval_notes = 'Solicitud incompleta (sin solicitante o sin límite solicitado): '
                             || 'cerrada por la actualización 0007; vuelva a solicitarla.'
        WHERE status = 'pending' AND (requested_by IS NULL OR requested_limit IS NULL);
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
    # A pending account needs its pending new-line request (requester, limit, date: NOT NULL
    # there). Checked at commit, from both sides, since a CHECK cannot look at another table.
    op.execute(
        """
        CREATE FUNCTION credit_pending_request_check() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            row_org uuid;
            row_account uuid;
        BEGIN
            IF TG_OP = 'DELETE' THEN
                row_org := OLD.organization_id;
                row_account := OLD.credit_account_id;
            ELSE
                row_org := NEW.organization_id;
                row_account := NEW.credit_account_id;
            END IF;
            IF EXISTS (SELECT 1 FROM credit_accounts a
                       WHERE a.organization_id = row_org AND a.credit_account_id = row_account
                         AND a.status = 'pending')
               AND NOT EXISTS (SELECT 1 FROM credit_requests r
                               WHERE r.organization_id = row_org
                                 AND r.credit_account_id = row_account
                                 AND r.kind = 'new_line' AND r.state = 'pending') THEN
                RAISE EXCEPTION 'credit account % is pending without a pending request', row_account
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'check_credit_pending_request';
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE CONSTRAINT TRIGGER check_credit_pending_request
        AFTER INSERT OR UPDATE OF status ON credit_accounts
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        WHEN (NEW.status = 'pending')
        EXECUTE FUNCTION credit_pending_request_check()
        """
    )
    op.execute(
        """
        CREATE CONSTRAINT TRIGGER check_credit_request_leaves_pending
        AFTER UPDATE OF state, kind, credit_account_id OR DELETE ON credit_requests
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        EXECUTE FUNCTION credit_pending_request_check()
        """
    )

    op.execute(
        """
        ALTER TABLE credit_payment_allocations
            ADD COLUMN reverses_allocation_id UUID,
            DROP CONSTRAINT credit_payment_allocations_amount_check,
            DROP CONSTRAINT unique_payment_usage,
            ADD CONSTRAINT unique_allocation_key
                UNIQUE (organization_id, allocation_id, payment_id, usage_id),
            ADD CONSTRAINT fk_allocation_reverses
                FOREIGN KEY (organization_id, reverses_allocation_id, payment_id, usage_id)
                REFERENCES credit_payment_allocations
                    (organization_id, allocation_id, payment_id, usage_id),
            ADD CONSTRAINT unique_allocation_reversal
                UNIQUE (organization_id, reverses_allocation_id),
            ADD CONSTRAINT check_allocation_amount
                CHECK ((reverses_allocation_id IS NULL) = (amount > 0) AND amount <> 0)
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX unique_payment_usage ON credit_payment_allocations "
        "(organization_id, payment_id, usage_id) WHERE reverses_allocation_id IS NULL"
    )
    # Append-only: a reversal adds rows, nothing deletes one.
    op.execute(f"REVOKE DELETE ON credit_payment_allocations FROM {app_role()}")


def downgrade():
    op.execute(f"GRANT DELETE ON credit_payment_allocations TO {app_role()}")
    # The old schema undid a reversal by deleting the allocations it reversed.
    in_every_organization(
        """
        DELETE FROM credit_payment_allocations original
        USING credit_payment_allocations reversal
        WHERE reversal.reverses_allocation_id = original.allocation_id;
        DELETE FROM credit_payment_allocations WHERE amount < 0;
        """
    )
    op.execute("DROP INDEX unique_payment_usage")
    op.execute(
        """
        ALTER TABLE credit_payment_allocations
            DROP CONSTRAINT check_allocation_amount,
            DROP CONSTRAINT unique_allocation_reversal,
            DROP CONSTRAINT fk_allocation_reverses,
            DROP CONSTRAINT unique_allocation_key,
            DROP COLUMN reverses_allocation_id,
            ADD CONSTRAINT credit_payment_allocations_amount_check CHECK (amount > 0),
            ADD CONSTRAINT unique_payment_usage UNIQUE (organization_id, payment_id, usage_id)
        """
    )

    op.execute("DROP TRIGGER check_credit_request_leaves_pending ON credit_requests")
    op.execute("DROP TRIGGER check_credit_pending_request ON credit_accounts")
    op.execute("DROP FUNCTION credit_pending_request_check()")
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
            ADD CONSTRAINT check_credit_four_eyes CHECK (
                decided_by IS NULL OR requested_by IS NULL OR decided_by <> requested_by
            )
        """
    )
    # The old columns hold one request per account: the latest new-line request.
    in_every_organization(
        """
        UPDATE credit_accounts a
        SET requested_by = r.requested_by, requested_at = r.requested_at,
            requested_limit = r.requested_limit, requested_term_days = r.requested_term_days,
            request_notes = r.reason, decided_by = r.decided_by, decided_at = r.decided_at
        FROM (SELECT DISTINCT ON (credit_account_id) *
              FROM credit_requests WHERE kind = 'new_line'
              ORDER BY credit_account_id, requested_at DESC) r
        WHERE r.credit_account_id = a.credit_account_id;
        """
    )
    op.execute(
        "CREATE INDEX idx_credit_queue ON credit_accounts (organization_id, requested_at) "
        "WHERE status = 'pending'"
    )
    op.execute("DROP TABLE credit_requests")
    op.execute("DROP TABLE organization_settings")
