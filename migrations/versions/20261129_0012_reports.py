"""Aging report index: outstanding usages per account with what the report reads, so the bucket
totals and the per-account page are index-only scans instead of heap reads of every charge.

Revision ID: 0012_reports
Revises: 0011_worker_speed
Create Date: 2026-11-29
"""

from alembic import op

revision = "0012_reports"
down_revision = "0011_worker_speed"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "CREATE INDEX idx_credit_usage_aging ON credit_usages "
        "(organization_id, credit_account_id) INCLUDE (due_date, amount, usage_id) "
        "WHERE status IN ('pending', 'overdue')"
    )


def downgrade():
    op.execute("DROP INDEX idx_credit_usage_aging")
