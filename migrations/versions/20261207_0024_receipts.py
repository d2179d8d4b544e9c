"""Payment receipts: each payment gets its organization's next receipt number.

`credit_receipt_counters` holds each organization's last number; a BEFORE INSERT trigger on
`credit_payments` takes the next one for every payment (write-offs get none), in the writer's
transaction, so a rolled-back payment leaves no gap and numbers never repeat (UNIQUE per
organization). Payments of one organization wait for each other's commit on the counter row:
staff record payments at a human pace. Existing payments are numbered in the order they were
recorded.

Revision ID: 0024_receipts
Revises: 0023_audit_shards
Create Date: 2026-12-07
"""

from alembic import op

from portal.schema import grant_app, in_every_organization, tenant_rls

revision = "0024_receipts"
down_revision = "0023_audit_shards"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE credit_receipt_counters (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            last_number BIGINT NOT NULL CHECK (last_number > 0),
            PRIMARY KEY (organization_id)
        )
        """
    )
    tenant_rls("credit_receipt_counters")
    grant_app("credit_receipt_counters", "SELECT, INSERT, UPDATE")
    op.execute("ALTER TABLE credit_payments ADD COLUMN receipt_number BIGINT")
    in_every_organization(
        """
        UPDATE credit_payments p SET receipt_number = numbered.n
        FROM (SELECT payment_id,
                     row_number() OVER (ORDER BY created_at, payment_id) AS n
              FROM credit_payments WHERE kind = 'payment') AS numbered
        WHERE p.payment_id = numbered.payment_id;
        INSERT INTO credit_receipt_counters (organization_id, last_number)
        SELECT org, max(receipt_number) FROM credit_payments
        HAVING max(receipt_number) IS NOT NULL;
        """
    )
    op.execute(
        "ALTER TABLE credit_payments ADD CONSTRAINT unique_receipt_number"
        " UNIQUE (organization_id, receipt_number)"
    )
    op.execute(
        "ALTER TABLE credit_payments ADD CONSTRAINT check_receipt_number"
        " CHECK ((kind = 'payment') = (receipt_number IS NOT NULL))"
    )
    op.execute(
        """
        CREATE FUNCTION credit_payment_number() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
        BEGIN
            INSERT INTO credit_receipt_counters AS c (organization_id, last_number)
            VALUES (NEW.organization_id, 1)
            ON CONFLICT (organization_id) DO UPDATE SET last_number = c.last_number + 1
            RETURNING last_number INTO NEW.receipt_number;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER credit_payment_number BEFORE INSERT ON credit_payments"
        " FOR EACH ROW WHEN (NEW.kind = 'payment') EXECUTE FUNCTION credit_payment_number()"
    )


def downgrade():
    op.execute("DROP TRIGGER credit_payment_number ON credit_payments")
    op.execute("DROP FUNCTION credit_payment_number()")
    op.execute("ALTER TABLE credit_payments DROP CONSTRAINT check_receipt_number")
    op.execute("ALTER TABLE credit_payments DROP CONSTRAINT unique_receipt_number")
    op.execute("ALTER TABLE credit_payments DROP COLUMN receipt_number")
    op.execute("DROP TABLE credit_receipt_counters")
