"""Temporary passwords expire; staff emails are unique per organization, not globally.

A password set by an admin is temporary until its owner changes it: `password_temporary_until`
holds when it stops working (NULL for a password the user chose). The global unique email made
"create a user" reveal that an address exists in another organization; uniqueness is now per
organization like every other business key, and login tries each account of the address.

Revision ID: 0006_auth_hardening
Revises: 0005_staff_session_cutoff
Create Date: 2026-11-29
"""

from alembic import op

revision = "0006_auth_hardening"
down_revision = "0005_staff_session_cutoff"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE staff_users ADD COLUMN password_temporary_until TIMESTAMPTZ")
    op.execute(
        "ALTER TABLE staff_users"
        " ADD CONSTRAINT unique_staff_organization_email UNIQUE (organization_id, email)"
    )
    op.execute("ALTER TABLE staff_users DROP CONSTRAINT unique_staff_email")
    # staff_login_lookup(email) searches across organizations.
    op.execute("CREATE INDEX staff_users_email ON staff_users (email)")


def downgrade():
    # Fails loudly if the same email was meanwhile used in two organizations: merge them first.
    op.execute("ALTER TABLE staff_users ADD CONSTRAINT unique_staff_email UNIQUE (email)")
    op.execute("DROP INDEX staff_users_email")
    op.execute("ALTER TABLE staff_users DROP CONSTRAINT unique_staff_organization_email")
    op.execute("ALTER TABLE staff_users DROP COLUMN password_temporary_until")
