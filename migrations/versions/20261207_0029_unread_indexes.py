"""Two indexes of customers that no statement reads.

`idx_customers_organization` (organization_id, created_at DESC) and `idx_customers_last_purchase`
(organization_id, last_purchase_at DESC NULLS LAST) came from the seed's data model, kept by
0011 for "reports and exports by date"; no such report exists: the list, the search and the
export are ordered by activity (`idx_customers_activity`), the segments read purchase summaries,
and nothing orders or filters customers by creation or last purchase. Each still took an entry
on every new customer and on every update that is not HOT, such as the last-purchase update an
order event makes (docs/benchmarks-worker.md).

Revision ID: 0029_unread_indexes
Revises: 0028_search_tenants
Create Date: 2026-12-07
"""

from alembic import op

revision = "0029_unread_indexes"
down_revision = "0028_search_tenants"
branch_labels = None
depends_on = None

DROPPED = {
    "idx_customers_organization": (
        "(organization_id, created_at DESC)",
        "Customers by creation date, newest first (reports and exports by date).",
    ),
    "idx_customers_last_purchase": (
        "(organization_id, last_purchase_at DESC NULLS LAST)",
        "Customers by last purchase, most recent first (reports by date).",
    ),
}


def upgrade():
    for name in DROPPED:
        op.execute(f"DROP INDEX {name}")


def downgrade():
    for name, (columns, comment) in DROPPED.items():
        op.execute(f"CREATE INDEX {name} ON customers {columns}")
        op.execute(f"COMMENT ON INDEX {name} IS '{comment}'")
