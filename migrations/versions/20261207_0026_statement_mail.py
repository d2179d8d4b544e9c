"""Account statements attached to e-mails.

An outbox row may carry the account statement of a period, rendered by the worker when it sends
the message: `statement_end` (NULL: no attachment) and `statement_start` (NULL with an end: from
the account's opening, as the statement page shows it); an attachment needs the account.
`idempotency_key` is the form that queued a message by hand (staff sending a statement): UNIQUE,
so a double submit queues one message.

`dunning_levels.attach_statement`: the level's reminder e-mails carry the statement. Staff
sending a statement is logged in the contact log as the system outcome `statement_sent`.

Revision ID: 0026_statement_mail
Revises: 0025_late_fees
Create Date: 2026-12-07
"""

from alembic import op

from portal.schema import in_every_organization

revision = "0026_statement_mail"
down_revision = "0025_late_fees"
branch_labels = None
depends_on = None

COMMENTS = {
    "email_outbox.statement_start": "Attached statement from (NULL with an end: the opening)",
    "email_outbox.statement_end": "Attached statement up to (NULL: no attachment)",
    "email_outbox.idempotency_key": "The form that queued it: a double submit queues once",
}
OUTCOMES = ("contacted", "no_answer", "wrong_number", "promise", "dispute", "reminder")


def _outcomes_check(outcomes: tuple[str, ...]) -> None:
    codes = ", ".join(f"'{code}'" for code in outcomes)
    op.execute(
        "ALTER TABLE collection_contacts DROP CONSTRAINT collection_contacts_outcome_check, "
        f"ADD CONSTRAINT collection_contacts_outcome_check CHECK (outcome IN ({codes}))"
    )


def upgrade():
    op.execute(
        """
        ALTER TABLE email_outbox
        ADD COLUMN statement_start DATE,
        ADD COLUMN statement_end DATE,
        ADD COLUMN idempotency_key UUID,
        ADD CONSTRAINT check_outbox_statement CHECK (
            (statement_start IS NULL
             OR (statement_end IS NOT NULL AND statement_start <= statement_end))
            AND (statement_end IS NULL OR credit_account_id IS NOT NULL)
        ),
        ADD CONSTRAINT unique_outbox_idempotency_key UNIQUE (organization_id, idempotency_key)
        """
    )
    for column, comment in COMMENTS.items():
        op.execute(f"COMMENT ON COLUMN {column} IS '{comment}'")
    op.execute(
        "ALTER TABLE dunning_levels ADD COLUMN attach_statement BOOLEAN NOT NULL DEFAULT false"
    )
    _outcomes_check((*OUTCOMES, "statement_sent"))


def downgrade():
    in_every_organization("DELETE FROM collection_contacts WHERE outcome = 'statement_sent';")
    _outcomes_check(OUTCOMES)
    op.execute("ALTER TABLE dunning_levels DROP COLUMN attach_statement")
    op.execute(
        "ALTER TABLE email_outbox DROP CONSTRAINT unique_outbox_idempotency_key, "
        "DROP CONSTRAINT check_outbox_statement, DROP COLUMN idempotency_key, "
        "DROP COLUMN statement_end, DROP COLUMN statement_start"
    )
