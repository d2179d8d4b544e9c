"""Collections at scale and dunning.

Worklist state on the aging rows: each `credit_account_aging` row also carries what the
collections worklist orders and filters by (assigned collector, last contact and its outcome, next
action date, open promise, broken-promise flag) and a generated `urgency` (2: a broken promise
not yet followed up, 1: next action due on or before the row's day, 0: the rest; the nightly
reminders are no follow-up, so the last contact is the last one by staff) and
`overdue_cents` (the keyset's integer amount). The function
`collection_account_state(account)` is the one definition of that state; a BEFORE INSERT trigger
fills it on new aging rows (ledger writes re-insert them), and statement triggers on the
assignment, contact and promise tables refresh it on the accounts they touch. The daily job moves
every row to the new day (`computed_on`), which recomputes `urgency`. The worklist then reads one
index range backwards in its order (keyset on urgency, overdue in cents, account id, all
descending) with LIMIT.

Dunning: `dunning_levels` (per organization: days overdue, name, the Spanish subject and body of
the reminder) and `dunning_sends` (one row per account and level, unique: the nightly run sends
each level once; e-mail, or a letter to print for customers without one). Each send is also a
contact of outcome `reminder` in the contact log; a letter not yet mailed shows in the worklist
(`letter_send_id` on the aging row).

E-mail: `email_outbox`, written in the transaction that decides to send (the dunning run), and
delivered by a worker over SMTP at most once: a claim (`sending`) is committed before connecting,
`data_started_at` is committed just before the message's DATA, and `sent_at` after the server's
answer. A worker that died before DATA leaves a claim that is safe to retry; one that died after
leaves a message that may have gone, which is marked failed, never sent again. The Message-ID is
derived from the outbox id. `email_outbox_due()` names the organizations with mail to deliver
(for the sweeper, across organizations).

Revision ID: 0020_dunning
Revises: 0019_collections
Create Date: 2026-12-07
"""

from alembic import op

from portal.schema import app_role, grant_app, in_every_organization, tenant_rls

revision = "0020_dunning"
down_revision = "0019_collections"
branch_labels = None
depends_on = None

STATE = (
    ("collector_id", "UUID"),
    ("next_action_on", "DATE"),
    ("last_contact_at", "TIMESTAMPTZ"),
    ("last_channel", "VARCHAR(20)"),
    ("last_outcome", "VARCHAR(20)"),
    ("promise_amount", "NUMERIC(12, 2)"),
    ("promise_due_on", "DATE"),
    ("promise_broken", "BOOLEAN"),
    ("letter_send_id", "UUID"),
)
STATE_COLUMNS = ", ".join(name for name, _ in STATE)
OVERDUE_BUCKETS = ("days_1_30", "days_31_60", "days_61_90", "days_90_plus")
# The keyset compares integers and ids: numeric's comparison is not leakproof, so under RLS a row
# comparison on `overdue` would only filter the index scan from its start instead of starting it.
WORKLIST_ORDER = "urgency, overdue_cents, credit_account_id"
# Which accounts a statement on a collections table touched.
STATE_TRIGGERS = {
    "collection_assignments": ("INSERT", "UPDATE", "DELETE"),
    "collection_contacts": ("INSERT",),
    "collection_promises": ("INSERT", "UPDATE"),
    "dunning_sends": ("INSERT", "UPDATE"),
}
OUTCOMES = ("contacted", "no_answer", "wrong_number", "promise", "dispute")


def _outcomes_check(outcomes: tuple[str, ...]) -> None:
    codes = ", ".join(f"'{code}'" for code in outcomes)
    op.execute(
        "ALTER TABLE collection_contacts DROP CONSTRAINT collection_contacts_outcome_check, "
        f"ADD CONSTRAINT collection_contacts_outcome_check CHECK (outcome IN ({codes}))"
    )


def _dunning_upgrade():
    _outcomes_check((*OUTCOMES, "reminder"))  # the nightly run's sends, by the system
    op.execute(
        """
        CREATE TABLE dunning_levels (
            organization_id UUID NOT NULL REFERENCES organizations (organization_id),
            level_id UUID NOT NULL,
            days_overdue INTEGER NOT NULL CHECK (days_overdue BETWEEN 1 AND 365),
            name VARCHAR(80) NOT NULL CHECK (length(btrim(name)) > 0),
            subject VARCHAR(200) NOT NULL CHECK (length(btrim(subject)) > 0),
            body TEXT NOT NULL CHECK (length(btrim(body)) > 0 AND length(body) <= 5000),
            updated_by UUID,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, level_id),
            UNIQUE (organization_id, days_overdue),
            FOREIGN KEY (organization_id, updated_by)
                REFERENCES staff_users (organization_id, staff_user_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE dunning_sends (
            organization_id UUID NOT NULL,
            send_id UUID NOT NULL,
            credit_account_id UUID NOT NULL,
            level_id UUID NOT NULL,
            contact_id UUID NOT NULL,
            channel VARCHAR(10) NOT NULL CHECK (channel IN ('email', 'letter')),
            sent_on DATE NOT NULL,
            days_overdue INTEGER NOT NULL,
            overdue NUMERIC(14, 2) NOT NULL,
            oldest_due_on DATE NOT NULL,
            subject VARCHAR(200) NOT NULL,
            body TEXT NOT NULL,
            letter_mailed_at TIMESTAMPTZ,
            letter_mailed_by UUID,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, send_id),
            UNIQUE (organization_id, credit_account_id, level_id),
            UNIQUE (organization_id, contact_id),
            FOREIGN KEY (organization_id, credit_account_id)
                REFERENCES credit_accounts (organization_id, credit_account_id),
            FOREIGN KEY (organization_id, level_id)
                REFERENCES dunning_levels (organization_id, level_id),
            FOREIGN KEY (organization_id, contact_id)
                REFERENCES collection_contacts (organization_id, contact_id),
            FOREIGN KEY (organization_id, letter_mailed_by)
                REFERENCES staff_users (organization_id, staff_user_id),
            CONSTRAINT check_dunning_mailed CHECK (letter_mailed_at IS NULL OR channel = 'letter')
        )
        """
    )
    # The letters still to mail of an account (the worklist state's lookup).
    op.execute(
        "CREATE INDEX idx_dunning_sends_letters ON dunning_sends "
        "(organization_id, credit_account_id, created_at DESC) "
        "WHERE channel = 'letter' AND letter_mailed_at IS NULL"
    )
    for table in ("dunning_levels", "dunning_sends"):
        tenant_rls(table)
        grant_app(table, "SELECT, INSERT, UPDATE")


def _outbox_upgrade():
    op.execute(
        """
        CREATE TABLE email_outbox (
            organization_id UUID NOT NULL,
            outbox_id UUID NOT NULL,
            credit_account_id UUID,
            send_id UUID,
            to_address VARCHAR(255) NOT NULL,
            subject VARCHAR(200) NOT NULL,
            body TEXT NOT NULL,
            state VARCHAR(10) NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            claimed_at TIMESTAMPTZ,
            data_started_at TIMESTAMPTZ,
            sent_at TIMESTAMPTZ,
            last_error TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, outbox_id),
            UNIQUE (organization_id, send_id),
            FOREIGN KEY (organization_id, credit_account_id)
                REFERENCES credit_accounts (organization_id, credit_account_id),
            FOREIGN KEY (organization_id, send_id)
                REFERENCES dunning_sends (organization_id, send_id),
            CONSTRAINT check_outbox_sent CHECK ((state = 'sent') = (sent_at IS NOT NULL)),
            CONSTRAINT check_outbox_claimed CHECK (state <> 'sending' OR claimed_at IS NOT NULL)
        )
        """
    )
    # What a worker claims next, and the claims whose worker may have died.
    op.execute(
        "CREATE INDEX idx_email_outbox_due ON email_outbox (next_attempt_at) "
        "WHERE state = 'pending'"
    )
    op.execute(
        "CREATE INDEX idx_email_outbox_sending ON email_outbox (claimed_at) WHERE state = 'sending'"
    )
    tenant_rls("email_outbox")
    grant_app(
        "email_outbox",
        "SELECT, INSERT, UPDATE (state, attempts, next_attempt_at, claimed_at, data_started_at, "
        "sent_at, last_error)",
    )
    # The sweeper finds every organization's due mail through this function only (the owner's
    # read policy; the app role can execute it, not read around it).
    op.execute(
        "CREATE POLICY email_outbox_sweeper ON email_outbox FOR SELECT TO CURRENT_USER USING (true)"
    )
    op.execute(
        """
        CREATE FUNCTION email_outbox_due(p_lease_seconds INTEGER)
        RETURNS SETOF UUID
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            SELECT DISTINCT o.organization_id FROM public.email_outbox o
            WHERE (o.state = 'pending' AND o.next_attempt_at <= now())
               OR (o.state = 'sending'
                   AND o.claimed_at < now() - make_interval(secs => p_lease_seconds))
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION email_outbox_due(INTEGER) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION email_outbox_due(INTEGER) TO {app_role()}")


def _outbox_downgrade():
    op.execute("DROP FUNCTION email_outbox_due(INTEGER)")
    op.execute("DROP TABLE email_outbox")


def _dunning_downgrade():
    op.execute("DROP TABLE dunning_sends")
    op.execute("DROP TABLE dunning_levels")
    in_every_organization("DELETE FROM collection_contacts WHERE outcome = 'reminder';")
    _outcomes_check(OUTCOMES)


def _worklist_state_upgrade():
    columns = ",\n".join(
        f"ADD COLUMN {name} {kind}" + (" NOT NULL DEFAULT false" if kind == "BOOLEAN" else "")
        for name, kind in STATE
    )
    op.execute(
        f"""
        ALTER TABLE credit_account_aging
        {columns},
        ADD COLUMN urgency SMALLINT NOT NULL GENERATED ALWAYS AS (
            CASE WHEN promise_broken THEN 2 WHEN next_action_on <= computed_on THEN 1 ELSE 0 END
        ) STORED,
        ADD COLUMN overdue_cents BIGINT NOT NULL GENERATED ALWAYS AS (
            (({" + ".join(OVERDUE_BUCKETS)}) * 100)::bigint
        ) STORED
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION collection_account_state(p_account UUID)
        RETURNS TABLE ({", ".join(f"{name} {kind}" for name, kind in STATE)})
        LANGUAGE sql STABLE SET search_path = pg_catalog, public AS $$
            SELECT asg.collector_id, lc.next_action_on, lc.created_at, lc.channel, lc.outcome,
                   CASE WHEN lp.state = 'open' THEN lp.amount END,
                   CASE WHEN lp.state = 'open' THEN lp.due_on END,
                   coalesce(lp.state = 'broken' AND lc.created_at <= lp.settled_at, false),
                   (SELECT d.send_id FROM dunning_sends d
                    WHERE d.credit_account_id = p_account AND d.channel = 'letter'
                      AND d.letter_mailed_at IS NULL
                    ORDER BY d.created_at DESC LIMIT 1)
            FROM (SELECT 1) AS one
            LEFT JOIN collection_assignments asg ON asg.credit_account_id = p_account
            LEFT JOIN LATERAL (
                SELECT c.channel, c.outcome, c.created_at, c.next_action_on
                FROM collection_contacts c
                WHERE c.credit_account_id = p_account AND c.outcome <> 'reminder'
                ORDER BY c.created_at DESC, c.contact_id DESC LIMIT 1
            ) AS lc ON true
            LEFT JOIN LATERAL (
                SELECT p.state, p.amount, p.due_on, p.settled_at
                FROM collection_promises p WHERE p.credit_account_id = p_account
                ORDER BY p.promised_on DESC, p.promise_id DESC LIMIT 1
            ) AS lp ON true
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION collection_state_refresh(p_accounts UUID[]) RETURNS VOID
        LANGUAGE sql SET search_path = pg_catalog, public AS $$
            UPDATE credit_account_aging g
            SET ({STATE_COLUMNS}) = (SELECT s.* FROM collection_account_state(g.credit_account_id) s)
            WHERE g.credit_account_id = ANY (p_accounts)
        $$
        """
    )
    assignments = ", ".join(f"NEW.{name}" for name, _ in STATE)
    op.execute(
        f"""
        CREATE FUNCTION credit_aging_collection_state() RETURNS TRIGGER
        LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
        BEGIN
            SELECT s.* INTO {assignments}
            FROM collection_account_state(NEW.credit_account_id) s;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER credit_aging_collection_state BEFORE INSERT ON credit_account_aging "
        "FOR EACH ROW EXECUTE FUNCTION credit_aging_collection_state()"
    )
    for table, events in STATE_TRIGGERS.items():
        for event in events:
            name = f"{table}_state_{event.lower()}"
            changed = "OLD TABLE AS changed" if event == "DELETE" else "NEW TABLE AS changed"
            op.execute(
                f"""
                CREATE FUNCTION {name}() RETURNS TRIGGER
                LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
                BEGIN
                    PERFORM collection_state_refresh(ARRAY(
                        SELECT DISTINCT credit_account_id FROM changed ORDER BY 1));
                    RETURN NULL;
                END
                $$
                """
            )
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {changed} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
    # The worklist's order, alone, by collector (NULL: unassigned), and within each bucket.
    op.execute(
        "CREATE INDEX idx_collection_worklist ON credit_account_aging "
        f"(organization_id, {WORKLIST_ORDER}) WHERE overdue > 0"
    )
    op.execute(
        "CREATE INDEX idx_collection_worklist_collector ON credit_account_aging "
        f"(organization_id, collector_id, {WORKLIST_ORDER}) WHERE overdue > 0"
    )
    for bucket in OVERDUE_BUCKETS:
        op.execute(
            f"CREATE INDEX idx_collection_worklist_{bucket} ON credit_account_aging "
            f"(organization_id, {WORKLIST_ORDER}) WHERE {bucket} > 0"
        )
    in_every_organization(
        "PERFORM collection_state_refresh(ARRAY(SELECT credit_account_id "
        "FROM credit_account_aging));"
    )
    op.execute("ANALYZE credit_account_aging")


def _worklist_state_downgrade():
    for table, events in STATE_TRIGGERS.items():
        for event in events:
            name = f"{table}_state_{event.lower()}"
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"DROP FUNCTION {name}()")
    op.execute("DROP TRIGGER credit_aging_collection_state ON credit_account_aging")
    op.execute("DROP FUNCTION credit_aging_collection_state()")
    op.execute("DROP FUNCTION collection_state_refresh(UUID[])")
    op.execute("DROP FUNCTION collection_account_state(UUID)")
    dropped = ("urgency", "overdue_cents", *STATE_COLUMNS.split(", "))
    columns = ", ".join(f"DROP COLUMN {name}" for name in dropped)
    op.execute(f"ALTER TABLE credit_account_aging {columns}")  # drops the worklist indexes


def upgrade():
    _dunning_upgrade()
    _outbox_upgrade()
    _worklist_state_upgrade()


def downgrade():
    _worklist_state_downgrade()
    _outbox_downgrade()
    _dunning_downgrade()
