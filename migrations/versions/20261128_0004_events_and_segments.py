"""Durable event inbox, purchases projection, out-of-order safe tier and order updates.

Revision ID: 0004_events_and_segments
Revises: 0003_credit_ledger
Create Date: 2026-11-28
"""

from alembic import op

from portal.schema import app_role, grant_app, tenant_rls

revision = "0004_events_and_segments"
down_revision = "0003_credit_ledger"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE event_inbox (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            event_id UUID NOT NULL,
            event_type VARCHAR(100) NOT NULL,
            occurred_at TIMESTAMPTZ NOT NULL,
            payload JSONB NOT NULL,
            payload_hash CHAR(64) NOT NULL,
            status VARCHAR(20) NOT NULL DEFAULT 'received',
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            processed_at TIMESTAMPTZ,
            PRIMARY KEY (organization_id, event_id),
            CONSTRAINT check_inbox_status CHECK (status IN ('received', 'processed', 'dead'))
        )
        """
    )
    op.execute(
        "CREATE INDEX idx_inbox_pending ON event_inbox (organization_id, received_at) "
        "WHERE status = 'received'"
    )
    op.execute(
        "CREATE INDEX idx_inbox_status ON event_inbox (organization_id, status, received_at DESC)"
    )
    op.execute(
        """
        CREATE TABLE purchases (
            organization_id UUID NOT NULL,
            order_id UUID NOT NULL,
            customer_id UUID NOT NULL,
            total NUMERIC(12, 2) NOT NULL CHECK (total >= 0),
            completed_at TIMESTAMPTZ NOT NULL,
            status VARCHAR(20) NOT NULL,
            event_occurred_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, order_id),
            FOREIGN KEY (organization_id, customer_id)
                REFERENCES customers (organization_id, customer_id),
            CONSTRAINT check_purchase_status CHECK (status IN ('completed', 'cancelled'))
        )
        """
    )
    op.execute(
        "CREATE INDEX idx_purchases_customer ON purchases (organization_id, customer_id) "
        "INCLUDE (total, completed_at) WHERE status = 'completed'"
    )
    op.execute("ALTER TABLE customers ADD COLUMN loyalty_tier_changed_at TIMESTAMPTZ")
    for table in ("event_inbox", "purchases"):
        tenant_rls(table)
        grant_app(table, "SELECT, INSERT, UPDATE")

    # The sweeper finds unprocessed events of every organization through this function only.
    op.execute(
        "CREATE POLICY event_inbox_sweeper ON event_inbox FOR SELECT TO CURRENT_USER USING (true)"
    )
    op.execute(
        """
        CREATE FUNCTION inbox_stalled(p_older_than INTERVAL, p_limit INTEGER DEFAULT 10000)
        RETURNS TABLE (organization_id UUID, event_id UUID)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            SELECT i.organization_id, i.event_id FROM public.event_inbox i
            WHERE i.status = 'received' AND i.received_at < now() - p_older_than
            ORDER BY i.received_at LIMIT p_limit
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION inbox_stalled(INTERVAL, INTEGER) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION inbox_stalled(INTERVAL, INTEGER) TO {app_role()}")


def downgrade():
    op.execute("DROP FUNCTION inbox_stalled(INTERVAL, INTEGER)")
    op.execute("ALTER TABLE customers DROP COLUMN loyalty_tier_changed_at")
    op.execute("DROP TABLE purchases")
    op.execute("DROP TABLE event_inbox")
