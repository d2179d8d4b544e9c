"""Segments from a per-customer purchase summary, recomputed incrementally and recorded per run.

- `purchase_summaries`: per customer, the completed orders, their total and the first and last
  purchase. Every customer has one from its creation (a trigger on `customers`), so a new
  customer shows up as a changed summary. Statement-level triggers on `purchases`
  (`purchase_summaries_refresh`) re-aggregate the customers a statement touched, in that
  statement, whoever writes purchases (the order events' apply, bulk loads, the demo seed). A
  row is rewritten only when a value changes, and then records the writing transaction
  (`changed_xid`), so a recompute can ask which summaries changed since the snapshot of the
  previous run.
- `customer_segments.last_purchase_on` replaces `days_since_last_purchase`: the day count changed
  every day for every buyer, so a recompute that writes only changed rows would have rewritten
  every buyer nightly; the page computes the days from the date.
- `segment_runs`: one row per recompute (append-only): its snapshot, the quintile boundaries it
  scored with, how many customers it considered and how many rows it wrote.

Revision ID: 0022_worker_scale
Revises: 0021_timeline
Create Date: 2026-12-07
"""

from alembic import op

from portal.schema import grant_app, in_every_organization, tenant_rls

revision = "0022_worker_scale"
down_revision = "0021_timeline"
branch_labels = None
depends_on = None

_REFRESH_TRIGGERS = {"insert": "NEW", "update": "NEW", "delete": "OLD"}


def upgrade():
    op.execute(
        """
        CREATE TABLE purchase_summaries (
            organization_id UUID NOT NULL,
            customer_id UUID NOT NULL,
            orders INTEGER NOT NULL CHECK (orders >= 0),
            lifetime_value NUMERIC(14, 2) NOT NULL CHECK (lifetime_value >= 0),
            first_purchase_at TIMESTAMPTZ,
            last_purchase_at TIMESTAMPTZ,
            changed_xid XID8 NOT NULL DEFAULT pg_current_xact_id(),
            PRIMARY KEY (organization_id, customer_id),
            FOREIGN KEY (organization_id, customer_id)
                REFERENCES customers (organization_id, customer_id) ON DELETE CASCADE,
            CONSTRAINT check_summary_dates CHECK (
                (orders = 0) = (last_purchase_at IS NULL)
                AND (first_purchase_at IS NULL) = (last_purchase_at IS NULL)
            )
        )
        """
    )
    op.execute(
        "COMMENT ON COLUMN purchase_summaries.changed_xid IS "
        "'The transaction that last changed the row: a recompute takes the rows its previous "
        "run''s snapshot could not see.'"
    )
    tenant_rls("purchase_summaries")
    grant_app("purchase_summaries", "SELECT, INSERT, UPDATE")
    # Re-aggregating the touched customers (not adding deltas) makes redelivered, out-of-order and
    # cancelled orders right by construction; the partial index on purchases makes it an
    # index-only scan. Writers of one customer's purchases serialize on the customer row (the
    # apply locks its customers first), so each aggregate sees the other's committed purchases.
    op.execute(
        """
        CREATE FUNCTION purchase_summaries_refresh() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
        BEGIN
            INSERT INTO purchase_summaries AS s (organization_id, customer_id, orders,
                lifetime_value, first_purchase_at, last_purchase_at, changed_xid)
            SELECT t.organization_id, t.customer_id, count(p.order_id),
                   coalesce(sum(p.total), 0), min(p.completed_at), max(p.completed_at),
                   pg_current_xact_id()
            FROM (SELECT DISTINCT organization_id, customer_id FROM touched) t
            LEFT JOIN purchases p ON p.organization_id = t.organization_id
                 AND p.customer_id = t.customer_id AND p.status = 'completed'
            GROUP BY t.organization_id, t.customer_id
            ORDER BY t.organization_id, t.customer_id
            ON CONFLICT (organization_id, customer_id) DO UPDATE
            SET orders = excluded.orders, lifetime_value = excluded.lifetime_value,
                first_purchase_at = excluded.first_purchase_at,
                last_purchase_at = excluded.last_purchase_at, changed_xid = excluded.changed_xid
            WHERE (s.orders, s.lifetime_value, s.first_purchase_at, s.last_purchase_at)
                  IS DISTINCT FROM (excluded.orders, excluded.lifetime_value,
                                    excluded.first_purchase_at, excluded.last_purchase_at);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION purchase_summaries_create() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
        BEGIN
            INSERT INTO purchase_summaries (organization_id, customer_id, orders, lifetime_value)
            SELECT organization_id, customer_id, 0, 0 FROM created
            ON CONFLICT (organization_id, customer_id) DO NOTHING;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER purchase_summaries_on_new_customer AFTER INSERT ON customers "
        "REFERENCING NEW TABLE AS created FOR EACH STATEMENT "
        "EXECUTE FUNCTION purchase_summaries_create()"
    )
    for event, rows in _REFRESH_TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER purchase_summaries_on_{event} AFTER {event.upper()} ON purchases "
            f"REFERENCING {rows} TABLE AS touched FOR EACH STATEMENT "
            "EXECUTE FUNCTION purchase_summaries_refresh()"
        )
    in_every_organization(
        """
        INSERT INTO purchase_summaries (organization_id, customer_id, orders, lifetime_value,
                                        first_purchase_at, last_purchase_at)
        SELECT c.organization_id, c.customer_id, count(p.order_id), coalesce(sum(p.total), 0),
               min(p.completed_at), max(p.completed_at)
        FROM customers c
        LEFT JOIN purchases p ON p.customer_id = c.customer_id AND p.status = 'completed'
        GROUP BY c.organization_id, c.customer_id;
        """
    )

    op.execute("ALTER TABLE customer_segments ADD COLUMN last_purchase_on DATE")
    in_every_organization(
        """
        UPDATE customer_segments g
        SET last_purchase_on = (s.last_purchase_at AT TIME ZONE 'America/Panama')::date
        FROM purchase_summaries s WHERE s.customer_id = g.customer_id;
        """
    )
    op.execute("ALTER TABLE customer_segments DROP COLUMN days_since_last_purchase")

    op.execute(
        """
        CREATE TABLE segment_runs (
            organization_id UUID NOT NULL REFERENCES organizations (organization_id),
            run_id UUID NOT NULL DEFAULT gen_random_uuid(),
            started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            finished_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
            kind VARCHAR(12) NOT NULL CHECK (kind IN ('full', 'incremental')),
            snapshot PG_SNAPSHOT NOT NULL,
            buyers INTEGER NOT NULL CHECK (buyers >= 0),
            recency_bounds DATE[],
            frequency_bounds INTEGER[],
            monetary_bounds NUMERIC(14, 2)[],
            vip_bound NUMERIC(14, 2),
            considered INTEGER NOT NULL CHECK (considered >= 0),
            written INTEGER NOT NULL CHECK (written >= 0),
            PRIMARY KEY (organization_id, run_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX idx_segment_runs_latest ON segment_runs (organization_id, started_at DESC)"
    )
    op.execute(
        "COMMENT ON INDEX idx_segment_runs_latest IS "
        "'The previous run (an incremental recompute starts from it) and the page''s last run.'"
    )
    tenant_rls("segment_runs")
    grant_app("segment_runs", "SELECT, INSERT")  # append-only


def downgrade():
    op.execute("DROP TABLE segment_runs")
    op.execute("ALTER TABLE customer_segments ADD COLUMN days_since_last_purchase INTEGER")
    in_every_organization(
        """
        UPDATE customer_segments
        SET days_since_last_purchase = (now() AT TIME ZONE 'America/Panama')::date
                                       - last_purchase_on;
        """
    )
    op.execute("ALTER TABLE customer_segments DROP COLUMN last_purchase_on")
    for event in _REFRESH_TRIGGERS:
        op.execute(f"DROP TRIGGER purchase_summaries_on_{event} ON purchases")
    op.execute("DROP FUNCTION purchase_summaries_refresh()")
    op.execute("DROP TRIGGER purchase_summaries_on_new_customer ON customers")
    op.execute("DROP FUNCTION purchase_summaries_create()")
    op.execute("DROP TABLE purchase_summaries")
