"""Tier events as HOT updates: no duplicate or tier index on customers, free space on its pages.

A tier event updates loyalty_tier and loyalty_tier_changed_at only (no longer updated_at, a
product decision: a tier change is not recent activity). With no index on either column and
free space on the page (fillfactor 85), PostgreSQL updates the row in place (a HOT update) and
writes no index entry at all, instead of one in each of the 14 indexes of customers.

- idx_customers_email, idx_customers_phone and idx_customers_document were exact copies of the
  indexes behind unique_org_email, unique_org_phone and unique_org_document.
- idx_customers_loyalty_tier served only the search's tier filter, which has four values and
  is applied to rows already found by the activity or word indexes.
- idx_segment_customer was an exact copy of the index behind unique_org_segment_customer.

Every remaining index says what it serves (COMMENT ON INDEX, shown in docs/schema.md).

Revision ID: 0011_worker_speed
Revises: 0010_name_words
Create Date: 2026-11-29
"""

from alembic import op

revision = "0011_worker_speed"
down_revision = "0010_name_words"
branch_labels = None
depends_on = None

DROPPED = {
    "idx_customers_email": "customers USING btree (organization_id, email)",
    "idx_customers_phone": "customers USING btree (organization_id, phone)",
    "idx_customers_document": "customers USING btree (organization_id, document_number)",
    "idx_customers_loyalty_tier": "customers USING btree (organization_id, loyalty_tier)",
    "idx_segment_customer": "customer_segments USING btree (organization_id, customer_id)",
}
COMMENTS = {
    "customers_pkey": "Loads by id; every tenant join from addresses, accounts and segments.",
    "unique_org_email": "One e-mail per organization; also serves lookups by exact e-mail.",
    "unique_org_phone": "One phone per organization; also serves lookups by exact phone.",
    "unique_org_document": "One document per organization; also serves exact document lookups.",
    "idx_customers_activity": "The empty search box: most recent activity first, keyset paged.",
    "idx_customers_organization": "Customers by creation date, newest first (reports and exports by date).",
    "idx_customers_last_purchase": "Customers by last purchase, most recent first (reports by date).",
    "idx_customers_status": "Filter by status (active, inactive, blocked).",
    "idx_customers_email_prefix": "Search: an e-mail prefix (LIKE ana@%), in index order.",
    "idx_customers_phone_digits": "Search: a phone number or its prefix, digits only.",
    "idx_customers_document_key": "Search: a document number or its prefix, normalized.",
    "idx_customers_name_words": "Search: name words, keyed by organization and word (GIN).",
}


def upgrade():
    # The worker checks event fields in SQL. pg_input_is_valid() exists from PostgreSQL 16; on
    # older servers (CI's machine PostgreSQL is 15) the same answer comes from trying the cast.
    if op.get_bind().dialect.server_version_info >= (16,):
        body = (
            "LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT pg_input_is_valid(value, type_name) $$"
        )
    else:
        body = """LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
            BEGIN
                EXECUTE format('SELECT CAST(%L AS %s)', value, type_name);
                RETURN true;
            EXCEPTION WHEN data_exception THEN
                RETURN false;
            END
            $$"""
    op.execute(
        "CREATE FUNCTION input_is_valid(value TEXT, type_name TEXT) RETURNS BOOLEAN "
        f"SET search_path = pg_catalog {body}"
    )
    op.execute(
        "COMMENT ON FUNCTION input_is_valid(TEXT, TEXT) IS "
        "'Whether a text casts to the type without error (event checks in the worker).'"
    )
    for name in DROPPED:
        op.execute(f"DROP INDEX {name}")
    op.execute("ALTER TABLE customers SET (fillfactor = 85)")
    for name, comment in COMMENTS.items():
        op.execute(f"COMMENT ON INDEX {name} IS '{comment}'")


def downgrade():
    op.execute("DROP FUNCTION input_is_valid(TEXT, TEXT)")
    for name in COMMENTS:
        op.execute(f"COMMENT ON INDEX {name} IS NULL")
    op.execute("ALTER TABLE customers RESET (fillfactor)")
    for name, definition in DROPPED.items():
        op.execute(f"CREATE INDEX {name} ON {definition}")
