"""Collections: who works each overdue account, the contact log, promises to pay.

- `collection_assignments`: the collector assigned to an account (one row per account, replaced
  on reassignment; the audit log keeps the history).
- `collection_contacts`: the contact log, append-only (the app role may only insert and read):
  channel, outcome, note, the next action date.
- `collection_promises`: a promise to pay (amount by a date) made in a contact of outcome
  `promise`; the nightly job settles it as kept or broken (its only UPDATE).

Revision ID: 0019_collections
Revises: 0018_credit_desk
Create Date: 2026-11-29
"""

from alembic import op

from portal.schema import grant_app, tenant_rls

revision = "0019_collections"
down_revision = "0018_credit_desk"
branch_labels = None
depends_on = None

CHANNELS = ("call", "visit", "sms", "whatsapp", "email", "letter")
OUTCOMES = ("contacted", "no_answer", "wrong_number", "promise", "dispute")


def _codes(codes: tuple[str, ...]) -> str:
    return ", ".join(f"'{code}'" for code in codes)


def upgrade():
    op.execute(
        """
        CREATE TABLE collection_assignments (
            organization_id UUID NOT NULL,
            credit_account_id UUID NOT NULL,
            collector_id UUID NOT NULL,
            assigned_by UUID,
            assigned_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, credit_account_id),
            FOREIGN KEY (organization_id, credit_account_id)
                REFERENCES credit_accounts (organization_id, credit_account_id),
            FOREIGN KEY (organization_id, collector_id)
                REFERENCES staff_users (organization_id, staff_user_id),
            FOREIGN KEY (organization_id, assigned_by)
                REFERENCES staff_users (organization_id, staff_user_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX idx_collection_assignments_collector ON collection_assignments "
        "(organization_id, collector_id)"
    )
    op.execute(
        f"""
        CREATE TABLE collection_contacts (
            organization_id UUID NOT NULL,
            contact_id UUID NOT NULL,
            credit_account_id UUID NOT NULL,
            channel VARCHAR(20) NOT NULL CHECK (channel IN ({_codes(CHANNELS)})),
            outcome VARCHAR(20) NOT NULL CHECK (outcome IN ({_codes(OUTCOMES)})),
            note TEXT CHECK (length(note) <= 2000),
            next_action_on DATE,
            created_by UUID,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, contact_id),
            FOREIGN KEY (organization_id, credit_account_id)
                REFERENCES credit_accounts (organization_id, credit_account_id),
            FOREIGN KEY (organization_id, created_by)
                REFERENCES staff_users (organization_id, staff_user_id)
        )
        """
    )
    # The account's log, newest first, and its last contact (the worklist's lateral read).
    op.execute(
        "CREATE INDEX idx_collection_contacts_account ON collection_contacts "
        "(organization_id, credit_account_id, created_at DESC, contact_id DESC)"
    )
    op.execute(
        """
        CREATE TABLE collection_promises (
            organization_id UUID NOT NULL,
            promise_id UUID NOT NULL,
            credit_account_id UUID NOT NULL,
            contact_id UUID NOT NULL,
            amount NUMERIC(12, 2) NOT NULL CHECK (amount > 0),
            promised_on DATE NOT NULL,
            due_on DATE NOT NULL,
            state VARCHAR(10) NOT NULL DEFAULT 'open'
                CHECK (state IN ('open', 'kept', 'broken')),
            settled_at TIMESTAMPTZ,
            PRIMARY KEY (organization_id, promise_id),
            UNIQUE (organization_id, contact_id),
            FOREIGN KEY (organization_id, credit_account_id)
                REFERENCES credit_accounts (organization_id, credit_account_id),
            FOREIGN KEY (organization_id, contact_id)
                REFERENCES collection_contacts (organization_id, contact_id),
            CONSTRAINT check_promise_due CHECK (due_on >= promised_on),
            CONSTRAINT check_promise_settled CHECK ((state = 'open') = (settled_at IS NULL))
        )
        """
    )
    op.execute(
        "CREATE INDEX idx_collection_promises_account ON collection_promises "
        "(organization_id, credit_account_id, promised_on DESC, promise_id DESC)"
    )
    op.execute(
        "CREATE INDEX idx_collection_promises_open ON collection_promises "
        "(organization_id, due_on) WHERE state = 'open'"
    )
    for table in ("collection_assignments", "collection_contacts", "collection_promises"):
        tenant_rls(table)
    grant_app("collection_assignments")
    grant_app("collection_contacts", "SELECT, INSERT")  # append-only
    grant_app("collection_promises", "SELECT, INSERT, UPDATE")


def downgrade():
    op.execute("DROP TABLE collection_promises")
    op.execute("DROP TABLE collection_contacts")
    op.execute("DROP TABLE collection_assignments")
