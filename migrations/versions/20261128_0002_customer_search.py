"""Customer search keys, optimistic locking and the narrow search function.

Trigram and LIKE operators are not leakproof, so below an RLS policy PostgreSQL will not use them
as index conditions. The search therefore runs in one reviewed SECURITY DEFINER function that
filters by the caller's organization itself and returns only (customer_id, rank); its owner gets
a SELECT-only policy on customers for that purpose. Everything else still goes through RLS.

Revision ID: 0002_customer_search
Revises: 0001_foundation
Create Date: 2026-11-28
"""

from alembic import op

from portal.schema import app_role

revision = "0002_customer_search"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE FUNCTION search_normalize(value TEXT) RETURNS TEXT
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        SET search_path = pg_catalog, public AS $$
            SELECT lower(public.unaccent('public.unaccent'::regdictionary, value))
        $$
        """
    )
    op.execute(
        """
        ALTER TABLE customers
            ADD COLUMN version_id INTEGER NOT NULL DEFAULT 1,
            ADD COLUMN search_name TEXT GENERATED ALWAYS AS
                (search_normalize(first_name || ' ' || last_name)) STORED,
            ADD COLUMN phone_digits TEXT GENERATED ALWAYS AS
                (regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g')) STORED,
            ADD COLUMN document_key TEXT GENERATED ALWAYS AS
                (upper(regexp_replace(coalesce(document_number, ''), '[^0-9A-Za-z]', '', 'g'))) STORED,
            ADD COLUMN activity_at TIMESTAMPTZ GENERATED ALWAYS AS
                (greatest(created_at, updated_at, last_purchase_at)) STORED,
            ADD COLUMN status_reason TEXT,
            ADD CONSTRAINT check_customer_names CHECK (
                length(btrim(first_name)) > 0 AND length(btrim(last_name)) > 0
            ),
            ADD CONSTRAINT check_customer_email CHECK (email = lower(email) AND email LIKE '%_@_%'),
            ADD CONSTRAINT check_customer_phone CHECK (phone ~ '^\\+[1-9][0-9]{6,14}$'),
            ADD CONSTRAINT check_customer_birth_date CHECK (birth_date >= DATE '1900-01-01'),
            ADD CONSTRAINT check_customer_document_pair CHECK (
                (document_type IS NULL) = (document_number IS NULL)
            )
        """
    )
    # Trigram-only: a btree_gin organization_id column would make every search read the whole
    # organization's posting list; the organization is checked on the rows the trigrams find.
    op.execute(
        "CREATE INDEX idx_customers_search_name ON customers USING gin (search_name gin_trgm_ops)"
    )
    # Nearest-first name search (KNN on word-similarity distance) within one organization.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute(
        "CREATE INDEX idx_customers_name_nearest ON customers "
        "USING gist (organization_id, search_name gist_trgm_ops)"
    )
    op.execute(
        "CREATE INDEX idx_customers_email_prefix ON customers (organization_id, email text_pattern_ops)"
    )
    op.execute(
        "CREATE INDEX idx_customers_phone_digits ON customers "
        "(organization_id, phone_digits text_pattern_ops)"
    )
    op.execute(
        "CREATE INDEX idx_customers_document_key ON customers "
        "(organization_id, document_key text_pattern_ops)"
    )
    op.execute(
        "CREATE INDEX idx_customers_activity ON customers "
        "(organization_id, activity_at DESC, customer_id DESC)"
    )

    op.execute(
        "CREATE POLICY customers_search ON customers FOR SELECT TO CURRENT_USER USING (true)"
    )
    op.execute(
        "CREATE POLICY customer_segments_search ON customer_segments FOR SELECT TO CURRENT_USER "
        "USING (true)"
    )
    # The search terms are computed once and passed to a dynamic statement, so each search is
    # planned with its own values (LIKE prefixes and trigram patterns become index conditions).
    op.execute(
        r"""
        CREATE FUNCTION customer_search_terms(
            p_query TEXT, OUT normalized TEXT, OUT pattern TEXT, OUT digits TEXT, OUT document TEXT
        )
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        SET search_path = pg_catalog, public AS $$
            SELECT q, replace(replace(replace(q, '\', '\\'), '%', '\%'), '_', '\_'),
                   regexp_replace(q, '[^0-9]', '', 'g'),
                   upper(regexp_replace(q, '[^0-9a-z]', '', 'g'))
            FROM (SELECT btrim(search_normalize(left(coalesce(p_query, ''), 200))) AS q) AS input
        $$
        """
    )
    search_functions_create()
    op.execute(f"GRANT EXECUTE ON FUNCTION search_normalize(TEXT) TO {app_role()}")


def search_functions_create():
    """customer_search_sql() and the customer_search / customer_search_explain functions."""
    op.execute(
        r"""
        CREATE FUNCTION customer_search_sql() RETURNS TEXT
        LANGUAGE sql IMMUTABLE AS $body$ SELECT $sql$
            -- $1 org, $2 normalized query, $3 LIKE-escaped query, $4 its digits, $5 its letters
            -- and digits (document key), $6..$9 filters, $10/$11 keyset cursor, $12 page size.
            -- Each query shape runs one family of branches, so a customer is ranked once.
            WITH candidates AS (
                -- an email: one token with '@' or '.'; prefix match
                SELECT c.customer_id, 3.0::float8 AS rank FROM public.customers c
                WHERE strpos($2, ' ') = 0 AND $2 ~ '[@.]' AND c.organization_id = $1
                  AND c.email LIKE $3 || '%'
                UNION ALL
                -- a phone in any format: digits compared, with or without Panama's 507
                SELECT c.customer_id, 2.5::float8 FROM public.customers c
                WHERE length($4) >= 3 AND $2 ~ '^[0-9 +().-]+$' AND c.organization_id = $1
                  AND (c.phone_digits LIKE $4 || '%' OR c.phone_digits LIKE '507' || $4 || '%')
                UNION ALL
                -- a document number: the exact one first, then prefixes
                SELECT c.customer_id, CASE WHEN c.document_key = $5 THEN 2.7 ELSE 2.0 END::float8
                FROM public.customers c
                WHERE length($5) >= 2 AND $5 ~ '[0-9]' AND strpos($2, '@') = 0
                  AND c.organization_id = $1 AND c.document_key LIKE $5 || '%'
                UNION ALL
                -- a name, no filters: nearest first straight from the GiST index, one page
                SELECT nearest.customer_id, nearest.rank FROM (
                    SELECT c.customer_id,
                           1::float8 - (c.search_name OPERATOR(public.<->>) $2)::float8 AS rank
                    FROM public.customers c
                    WHERE $2 ~ '[a-z]' AND $2 !~ '[0-9@]' AND NOT (strpos($2, ' ') = 0 AND $2 ~ '[.]')
                      AND $6::text IS NULL AND $7::text IS NULL AND $8::text IS NULL
                      AND $9::text IS NULL AND c.organization_id = $1
                      AND ($11::uuid IS NULL OR (1::float8 - (c.search_name OPERATOR(public.<->>) $2)::float8,
                                                  c.customer_id) < ($10::float8, $11::uuid))
                    -- Distance alone, so the GiST index yields rows in order and stops early
                    -- (a second sort key would sort the whole organization); the margin lets
                    -- the final (rank, id) order see ties around the page boundary.
                    ORDER BY c.search_name OPERATOR(public.<->>) $2
                    LIMIT $12 + 200
                ) AS nearest
                WHERE nearest.rank >= 0.5
                UNION ALL
                -- a name with filters: every match above the threshold (GIN), filtered below
                SELECT c.customer_id, 1::float8 - (c.search_name OPERATOR(public.<->>) $2)::float8
                FROM public.customers c
                WHERE $2 ~ '[a-z]' AND $2 !~ '[0-9@]' AND NOT (strpos($2, ' ') = 0 AND $2 ~ '[.]')
                  AND NOT ($6::text IS NULL AND $7::text IS NULL AND $8::text IS NULL
                           AND $9::text IS NULL)
                  AND c.organization_id = $1 AND c.search_name OPERATOR(public.%>) $2
            ),
            ranked AS (
                SELECT candidates.customer_id, max(candidates.rank) AS rank
                FROM candidates GROUP BY candidates.customer_id
            )
            SELECT r.customer_id, r.rank FROM ranked r
            JOIN public.customers c ON c.organization_id = $1 AND c.customer_id = r.customer_id
            LEFT JOIN public.customer_segments s
                ON s.organization_id = $1 AND s.customer_id = r.customer_id
            WHERE ($6::text IS NULL OR c.status = $6)
              AND ($7::text IS NULL OR c.customer_type = $7)
              AND ($8::text IS NULL OR c.loyalty_tier = $8)
              AND ($9::text IS NULL OR coalesce(s.segment_code, 'new') = $9)
              AND ($11::uuid IS NULL OR (r.rank, r.customer_id) < ($10::float8, $11::uuid))
            ORDER BY r.rank DESC, r.customer_id DESC
            LIMIT $12
        $sql$ $body$
        """
    )
    for name, returns, volatility, run in (
        (
            "customer_search",
            "TABLE (customer_id UUID, rank DOUBLE PRECISION)",
            "STABLE",
            "RETURN QUERY EXECUTE customer_search_sql()",
        ),
        # The same statement's plan, so tests and operators can prove it uses the indexes.
        (
            "customer_search_explain",
            "SETOF JSON",
            "VOLATILE",
            "RETURN QUERY EXECUTE 'EXPLAIN (FORMAT JSON) ' || customer_search_sql()",
        ),
    ):
        op.execute(
            f"""
            CREATE FUNCTION {name}(
                p_query TEXT,
                p_status TEXT DEFAULT NULL,
                p_type TEXT DEFAULT NULL,
                p_tier TEXT DEFAULT NULL,
                p_segment TEXT DEFAULT NULL,
                p_after_rank DOUBLE PRECISION DEFAULT NULL,
                p_after_id UUID DEFAULT NULL,
                p_limit INTEGER DEFAULT 50
            )
            RETURNS {returns}
            LANGUAGE plpgsql {volatility} SECURITY DEFINER
            SET search_path = pg_catalog, public
            SET pg_trgm.word_similarity_threshold = 0.5
            -- Names repeat a lot, so the planner's default 1 % guess for a trigram match can make a
            -- sequential scan look cheap on mid-sized tables; a keystroke must never scan them all.
            SET enable_seqscan = off
            AS $$
            DECLARE
                org UUID := nullif(current_setting('app.current_organization_id', true), '')::uuid;
                terms RECORD;
            BEGIN
                SELECT * INTO terms FROM customer_search_terms(p_query);
                IF org IS NULL OR terms.normalized = '' THEN
                    RETURN;  -- fail closed: no organization, no results
                END IF;
                {run}
                USING org, terms.normalized, terms.pattern, terms.digits, terms.document,
                      p_status, p_type, p_tier, p_segment, p_after_rank, p_after_id, p_limit;
            END
            $$
            """
        )
        op.execute(f"REVOKE ALL ON FUNCTION {name} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {name} TO {app_role()}")


def downgrade():
    op.execute("DROP FUNCTION customer_search_explain")
    op.execute("DROP FUNCTION customer_search")
    op.execute("DROP FUNCTION customer_search_sql()")
    op.execute("DROP FUNCTION customer_search_terms(TEXT)")
    op.execute("DROP POLICY customer_segments_search ON customer_segments")
    op.execute("DROP POLICY customers_search ON customers")
    op.execute("DROP INDEX idx_customers_email_prefix")
    op.execute(
        """
        ALTER TABLE customers
            DROP CONSTRAINT check_customer_document_pair,
            DROP CONSTRAINT check_customer_birth_date,
            DROP CONSTRAINT check_customer_phone,
            DROP CONSTRAINT check_customer_email,
            DROP CONSTRAINT check_customer_names,
            DROP COLUMN status_reason,
            DROP COLUMN activity_at,
            DROP COLUMN document_key,
            DROP COLUMN phone_digits,
            DROP COLUMN search_name,
            DROP COLUMN version_id
        """
    )
    op.execute("DROP FUNCTION search_normalize(TEXT)")
