"""Name search: every typed word may be the beginning of a name word ("mar gonz" finds María
González, not only "maria gonz"), and a large rank group is read month by month of activity,
newest first.

A two-word name shared by ~1,000 customers out of a million ("ivan dominguez") was read through
the GIN index and sorted by recency, one heap page per match (~1,100 pages, most of the
statement's time). A second GIN index keys each customer's name words by the month of its
`activity_at` ("<organization>:<word>@2026-11"), so such a group is read one month at a time,
newest month first: each statement intersects small posting lists and sorts the few customers of
that month, and the search stops as soon as the page is full (usually after one or two months).
Groups expected to be small are still read whole through the GIN index; very large ones still
walk the activity index. Order, ranks and the keyset are unchanged.

Revision ID: 0016_search_months
Revises: 0015_account_aging
Create Date: 2026-11-29
"""

from alembic import op

from portal.schema import earlier_revision

revision = "0016_search_months"
down_revision = "0015_account_aging"
branch_labels = None
depends_on = None

# Expected group sizes above this are read by month (below it, one GIN read costs less).
MONTHS_ABOVE = 500

DECLARE = """
            month_sql TEXT;
            newest_month TIMESTAMP;
            oldest_month TIMESTAMP;
            month_start TIMESTAMP;
            first_month TIMESTAMP;
            last_month TIMESTAMP;
            month_condition TEXT;"""
# Each typed word of the group: one of its words in the month '@month@' (filled in per month).
PER_WORD = """
                    month_sql := CASE WHEN i = 1 THEN '' ELSE month_sql END || format(
                        ' AND public.search_word_month_keys(c.organization_id, c.name_words,'
                        ' c.activity_at) OPERATOR(pg_catalog.&&)'
                        ' public.search_word_month_keys(%L::uuid, %L::text[], @month@)',
                        org, group_words);"""


def upgrade():
    op.execute(
        """
        CREATE FUNCTION search_word_month_keys(organization UUID, words TEXT[], at TIMESTAMPTZ)
        RETURNS TEXT[]
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        SET search_path = pg_catalog, public AS $$
            SELECT ARRAY(
                SELECT organization::text || ':' || word || '@'
                       || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM')
                FROM unnest(words) AS word
            )
        $$
        """
    )
    op.execute(
        "CREATE INDEX idx_customers_name_months ON customers "
        "USING gin (search_word_month_keys(organization_id, name_words, activity_at))"
    )
    op.execute(search_steps_sql())


def search_steps_sql() -> str:
    """customer_search_steps as this revision defines it (a later revision edits it)."""
    previous = earlier_revision("20261129_0010_name_words.py")
    page = f"""
                IF grp.estimate <= {MONTHS_ABOVE} OR grp.estimate > walk_above THEN{previous.GROUP_PAGE}
                ELSE
                    IF newest_month IS NULL THEN
                        SELECT date_trunc('month', max(c.activity_at) AT TIME ZONE 'UTC'),
                               date_trunc('month', min(c.activity_at) AT TIME ZONE 'UTC')
                        INTO newest_month, oldest_month
                        FROM public.customers c WHERE c.organization_id = org;
                    END IF;
                    -- Enough months for about three pages at the group's mean density (at
                    -- most a year), then one statement for everything older.
                    first_month := CASE WHEN p_after_rank = grp.rank
                        THEN date_trunc('month', after_activity AT TIME ZONE 'UTC')
                        ELSE newest_month END;
                    last_month := greatest(oldest_month, first_month - interval '1 month' * least(11,
                        ceil(3 * coalesce(p_limit, 26) * (
                            extract(year FROM age(newest_month, oldest_month)) * 12
                            + extract(month FROM age(newest_month, oldest_month)) + 1)
                            / grp.estimate) - 1));
                    FOR month_start, month_condition IN
                        SELECT m, replace(month_sql, '@month@', quote_literal(m AT TIME ZONE 'UTC'))
                        FROM generate_series(first_month, last_month, interval '-1 month') AS m
                        UNION ALL
                        SELECT NULL, keyed_sql || format(' AND c.activity_at < %L::timestamptz',
                                                         last_month AT TIME ZONE 'UTC')
                        WHERE last_month > oldest_month
                        ORDER BY 1 DESC NULLS LAST
                    LOOP
                        statement := format(
                            'WITH found AS MATERIALIZED (SELECT c.customer_id, c.activity_at'
                            ' FROM public.customers c WHERE c.organization_id = %L%s)'
                            ' SELECT found.customer_id, %L::float8 AS rank FROM found'
                            ' ORDER BY found.activity_at DESC, found.customer_id DESC LIMIT $1',
                            org, month_condition || group_sql, grp.rank);
                        RETURN NEXT;
                    END LOOP;
                END IF;"""
    return previous.search_steps_sql(
        declare=DECLARE, completed="true", per_word=PER_WORD, page=page
    )


def downgrade():
    op.execute(earlier_revision("20261129_0010_name_words.py").search_steps_sql())
    op.execute("DROP INDEX idx_customers_name_months")
    op.execute("DROP FUNCTION search_word_month_keys(UUID, TEXT[], TIMESTAMPTZ)")
