"""Staff sessions started before a password reset or a deactivation stop working.

Revision ID: 0005_staff_session_cutoff
Revises: 0004_events_and_segments
Create Date: 2026-11-28
"""

from alembic import op

revision = "0005_staff_session_cutoff"
down_revision = "0004_events_and_segments"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE staff_users ADD COLUMN sessions_valid_after TIMESTAMPTZ")


def downgrade():
    op.execute("ALTER TABLE staff_users DROP COLUMN sessions_valid_after")
