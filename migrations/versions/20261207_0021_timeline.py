"""Customer activity timeline, staff notes, segment history and companies (issue 13).

- `customer_notes`: staff notes on a customer, append-only (the app role may only insert and
  read; each note is also audited).
- `customer_segment_changes`: a customer's segment before and after, written by the segment
  recompute for the rows whose segment changed (the timeline reads it).
- `organization_settings.address`: the organization's address, printed on statements.
- `idx_inbox_customer_tier`: the applied tier-change events of one customer, newest first (the
  timeline reads tier changes from the event inbox; the index only holds tier events).
- `customers.company_name`: the legal name of a company (required for b2b, CHECK); existing b2b
  customers get their current name as company name. `full_name` is the name staff read, the
  company name for companies, "first last" for people, as a generated column so Python and SQL
  read the same thing. `name_words` now includes the company name's words.

`name_words` cannot change its expression in place on PostgreSQL 15 (SET EXPRESSION exists from
17), so it is dropped and added again, with its two GIN indexes and the rename trigger. Adding a
stored generated column rewrites the table once (`full_name` is added in the same statement, so
it costs no second rewrite) and rebuilds every index of customers; the name dictionary keeps its
counts because no existing customer gains a word (company names start empty, the backfilled ones
repeat the person's words). Measured on the shared 2-core box (embedded PostgreSQL 18), the
rewrite with every other index of customers rebuilt plus the two GIN indexes: 18.6 s at 200,000
customers, 79.4 s at 1,000,000 (58.8 s rewrite, 9.2 + 11.4 s GIN). Customers are locked (ACCESS
EXCLUSIVE) for that time: acceptable in a release's migration step; a migration without that
pause would add a second column, backfill it in batches under a trigger and swap names.

Revision ID: 0021_timeline
Revises: 0020_dunning
Create Date: 2026-12-07
"""

from alembic import op

from portal.schema import grant_app, in_every_organization, tenant_rls

revision = "0021_timeline"
down_revision = "0020_dunning"
branch_labels = None
depends_on = None

NAME_WORDS_COMMENTS = {
    "idx_customers_name_words": "Search: name words, keyed by organization and word (GIN).",
    "idx_customers_name_months": "Search: name words by month of activity (large rank groups).",
}


def _name_words_replace(expression: str, columns: str, extra_column: str = "") -> None:
    """Drop name_words (its indexes go with it) and add it again from `expression`."""
    op.execute("DROP TRIGGER customers_name_words_update ON customers")
    op.execute(
        "ALTER TABLE customers DROP COLUMN name_words, "
        f"ADD COLUMN name_words TEXT[] GENERATED ALWAYS AS (search_words({expression})) STORED"
        + extra_column
    )
    op.execute(
        "CREATE INDEX idx_customers_name_words ON customers "
        "USING gin (search_word_keys(organization_id, name_words))"
    )
    op.execute(
        "CREATE INDEX idx_customers_name_months ON customers "
        "USING gin (search_word_month_keys(organization_id, name_words, activity_at))"
    )
    for name, comment in NAME_WORDS_COMMENTS.items():
        op.execute(f"COMMENT ON INDEX {name} IS '{comment}'")
    op.execute(
        f"""
        CREATE TRIGGER customers_name_words_update AFTER UPDATE OF {columns}
        ON customers FOR EACH ROW WHEN (OLD.name_words IS DISTINCT FROM NEW.name_words)
        EXECUTE FUNCTION customers_name_words_update()
        """
    )


def upgrade():
    op.execute(
        """
        CREATE TABLE customer_notes (
            organization_id UUID NOT NULL,
            note_id UUID NOT NULL DEFAULT gen_random_uuid(),
            customer_id UUID NOT NULL,
            body TEXT NOT NULL CHECK (length(btrim(body)) BETWEEN 1 AND 2000),
            created_by UUID,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, note_id),
            FOREIGN KEY (organization_id, customer_id)
                REFERENCES customers (organization_id, customer_id),
            FOREIGN KEY (organization_id, created_by)
                REFERENCES staff_users (organization_id, staff_user_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX idx_customer_notes_customer ON customer_notes "
        "(organization_id, customer_id, created_at DESC, note_id DESC)"
    )
    op.execute(
        """
        CREATE TABLE customer_segment_changes (
            organization_id UUID NOT NULL,
            change_id UUID NOT NULL DEFAULT gen_random_uuid(),
            customer_id UUID NOT NULL,
            previous_segment VARCHAR(50) NOT NULL,
            segment VARCHAR(50) NOT NULL,
            changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, change_id),
            FOREIGN KEY (organization_id, customer_id)
                REFERENCES customers (organization_id, customer_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX idx_customer_segment_changes_customer ON customer_segment_changes "
        "(organization_id, customer_id, changed_at DESC, change_id DESC)"
    )
    for table in ("customer_notes", "customer_segment_changes"):
        tenant_rls(table)
        grant_app(table, "SELECT, INSERT")  # append-only
    op.execute(
        "CREATE INDEX idx_inbox_customer_tier ON event_inbox "
        "(organization_id, (payload -> 'data' ->> 'customer_id'), occurred_at DESC, event_id DESC) "
        "WHERE event_type = 'pricing.loyalty.tier_changed' AND status = 'processed'"
    )
    op.execute(
        "COMMENT ON INDEX idx_inbox_customer_tier IS "
        "'The tier changes of one customer, newest first (the customer timeline).'"
    )

    op.execute(
        "ALTER TABLE organization_settings ADD COLUMN address TEXT CHECK (length(address) <= 500)"
    )
    op.execute("ALTER TABLE customers ADD COLUMN company_name VARCHAR(255)")
    in_every_organization(
        "UPDATE customers SET company_name = first_name || ' ' || last_name "
        "WHERE customer_type = 'b2b';"
    )
    op.execute(
        "ALTER TABLE customers ADD CONSTRAINT check_customer_company CHECK "
        "(customer_type <> 'b2b' OR coalesce(length(btrim(company_name)), 0) > 0)"
    )
    _name_words_replace(
        "coalesce(company_name, '') || ' ' || first_name || ' ' || last_name",
        "first_name, last_name, company_name",
        ", ADD COLUMN full_name TEXT GENERATED ALWAYS AS "
        "(coalesce(company_name, first_name || ' ' || last_name)) STORED",
    )


def downgrade():
    op.execute("ALTER TABLE customers DROP COLUMN full_name")
    _name_words_replace("first_name || ' ' || last_name", "first_name, last_name")
    op.execute("ALTER TABLE customers DROP CONSTRAINT check_customer_company")
    # The dictionary counted the company names' own words: recount it without them.
    in_every_organization(
        """
        DELETE FROM customer_name_words;
        INSERT INTO customer_name_words (organization_id, word, frequency)
        SELECT c.organization_id, word, count(*)
        FROM customers c, unnest(c.name_words) AS word
        GROUP BY c.organization_id, word;
        """
    )
    op.execute("ALTER TABLE customers DROP COLUMN company_name")
    op.execute("ALTER TABLE organization_settings DROP COLUMN address")
    op.execute("DROP INDEX idx_inbox_customer_tier")
    op.execute("DROP TABLE customer_segment_changes")
    op.execute("DROP TABLE customer_notes")
