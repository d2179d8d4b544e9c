"""Name search as words: a per-organization word dictionary, name_words with a GIN index, and a
search that corrects each typed word against the dictionary before touching customers.

Each typed word (unaccented, lower case; digits are words too) becomes a few dictionary words: the
word itself, close spellings by trigram similarity (one typo), and for the last word its
completions. Customers whose `name_words` hold one candidate of every typed word are found
through a GIN index keyed by organization and word, grouped by match quality (rank) and, within a
rank, listed most recently active first with the customer id as the final tie-breaker. Large
groups walk the activity index instead of sorting every match, so a page costs about the same
at a million customers. Email prefixes are served in index order with a LIMIT.

The dictionary is kept in step with customers by triggers in the same transaction (set-based for
inserts and deletes, so bulk loads stay fast). The search still runs inside the reviewed SECURITY
DEFINER functions, which filter by the caller's organization themselves (see 0002).

Revision ID: 0010_name_words
Revises: 0009_event_keys
Create Date: 2026-11-29
"""

from alembic import op

from portal.schema import app_role, earlier_revision, grant_app, tenant_rls

revision = "0010_name_words"
down_revision = "0009_event_keys"
branch_labels = None
depends_on = None

SEARCH_ARGUMENTS = """
    p_query TEXT,
    p_status TEXT DEFAULT NULL,
    p_type TEXT DEFAULT NULL,
    p_tier TEXT DEFAULT NULL,
    p_segment TEXT DEFAULT NULL,
    p_after_rank DOUBLE PRECISION DEFAULT NULL,
    p_after_id UUID DEFAULT NULL
"""
SEARCH_SETTINGS = """
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public
    -- a keystroke must never scan a whole organization (see 0002)
    SET enable_seqscan = off
"""


def upgrade():
    op.execute(
        """
        CREATE FUNCTION search_words(value TEXT) RETURNS TEXT[]
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        SET search_path = pg_catalog, public AS $$
            SELECT ARRAY(
                SELECT DISTINCT word
                FROM regexp_split_to_table(public.search_normalize(value), '[^[:alnum:]]+') AS word
                WHERE word <> '' ORDER BY word
            )
        $$
        """
    )
    # GIN keys "organization:word": the index only ever holds one organization's postings per
    # key, so a search reads its own organization's customers and nobody else's.
    op.execute(
        """
        CREATE FUNCTION search_word_keys(organization UUID, words TEXT[]) RETURNS TEXT[]
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        SET search_path = pg_catalog, public AS $$
            SELECT ARRAY(SELECT organization::text || ':' || word FROM unnest(words) AS word)
        $$
        """
    )
    op.execute(
        "ALTER TABLE customers ADD COLUMN name_words TEXT[] GENERATED ALWAYS AS "
        "(search_words(first_name || ' ' || last_name)) STORED"
    )
    op.execute(
        """
        CREATE TABLE customer_name_words (
            organization_id UUID NOT NULL REFERENCES organizations (organization_id),
            word TEXT COLLATE "C" NOT NULL,
            frequency INTEGER NOT NULL CHECK (frequency >= 0),
            PRIMARY KEY (organization_id, word)
        )
        """
    )
    # Filled before RLS is switched on: the owner reads customers through its search policy.
    op.execute(
        """
        INSERT INTO customer_name_words (organization_id, word, frequency)
        SELECT c.organization_id, word, count(*)
        FROM customers c, unnest(c.name_words) AS word
        GROUP BY c.organization_id, word
        """
    )
    tenant_rls("customer_name_words")
    grant_app("customer_name_words")
    op.execute(
        "CREATE POLICY customer_name_words_search ON customer_name_words FOR SELECT "
        "TO CURRENT_USER USING (true)"
    )
    op.execute(
        "CREATE INDEX idx_customer_name_words_similar ON customer_name_words "
        "USING gist (organization_id, word gist_trgm_ops)"
    )
    op.execute(
        "CREATE INDEX idx_customers_name_words ON customers "
        "USING gin (search_word_keys(organization_id, name_words))"
    )
    _dictionary_triggers_create()
    op.execute("DROP FUNCTION customer_search_explain")
    op.execute("DROP FUNCTION customer_search")
    op.execute("DROP FUNCTION customer_search_sql()")
    _search_functions_create()
    # The whole-name trigram indexes served the previous search only.
    op.execute("DROP INDEX idx_customers_search_name")
    op.execute("DROP INDEX idx_customers_name_nearest")


def _dictionary_triggers_create():
    # Inserts and deletes are counted once per statement from the transition table (a bulk
    # load of 200,000 customers is one GROUP BY); a rename adjusts the words that changed.
    # Words are locked in order so concurrent writers cannot deadlock on them.
    op.execute(
        """
        CREATE FUNCTION customer_name_words_add(changes JSONB) RETURNS VOID
        LANGUAGE sql SET search_path = pg_catalog, public AS $$
            INSERT INTO public.customer_name_words AS d (organization_id, word, frequency)
            SELECT (change ->> 'organization_id')::uuid, change ->> 'word',
                   (change ->> 'count')::integer
            FROM jsonb_array_elements(changes) AS change
            ORDER BY 1, 2
            ON CONFLICT (organization_id, word)
            DO UPDATE SET frequency = d.frequency + excluded.frequency
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION customer_name_words_remove(changes JSONB) RETURNS VOID
        LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
        BEGIN
            -- Decrement first (re-evaluated on the latest row version under concurrency),
            -- then drop the words nobody carries any more.
            UPDATE public.customer_name_words d
            SET frequency = d.frequency - (change ->> 'count')::integer
            FROM jsonb_array_elements(changes) AS change
            WHERE d.organization_id = (change ->> 'organization_id')::uuid
              AND d.word = change ->> 'word';
            DELETE FROM public.customer_name_words d
            USING jsonb_array_elements(changes) AS change
            WHERE d.organization_id = (change ->> 'organization_id')::uuid
              AND d.word = change ->> 'word' AND d.frequency = 0;
        END
        $$
        """
    )
    for operation, table, function in (
        ("INSERT", "NEW", "customer_name_words_add"),
        ("DELETE", "OLD", "customer_name_words_remove"),
    ):
        op.execute(
            f"""
            CREATE FUNCTION customers_name_words_{operation.lower()}() RETURNS TRIGGER
            LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
            BEGIN
                PERFORM public.{function}(coalesce(jsonb_agg(counted), '[]'))
                FROM (SELECT changed.organization_id, word, count(*) AS count
                      FROM changed_rows AS changed, unnest(changed.name_words) AS word
                      GROUP BY changed.organization_id, word) AS counted;
                RETURN NULL;
            END
            $$
            """
        )
        op.execute(
            f"""
            CREATE TRIGGER customers_name_words_{operation.lower()} AFTER {operation} ON customers
            REFERENCING {table} TABLE AS changed_rows
            FOR EACH STATEMENT EXECUTE FUNCTION customers_name_words_{operation.lower()}()
            """
        )
    op.execute(
        """
        CREATE FUNCTION customers_name_words_update() RETURNS TRIGGER
        LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
        BEGIN
            PERFORM public.customer_name_words_remove(coalesce(jsonb_agg(jsonb_build_object(
                'organization_id', OLD.organization_id, 'word', word, 'count', 1)), '[]'))
            FROM unnest(OLD.name_words) AS word WHERE NOT word = ANY (NEW.name_words);
            PERFORM public.customer_name_words_add(coalesce(jsonb_agg(jsonb_build_object(
                'organization_id', NEW.organization_id, 'word', word, 'count', 1)), '[]'))
            FROM unnest(NEW.name_words) AS word WHERE NOT word = ANY (OLD.name_words);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER customers_name_words_update AFTER UPDATE OF first_name, last_name
        ON customers FOR EACH ROW WHEN (OLD.name_words IS DISTINCT FROM NEW.name_words)
        EXECUTE FUNCTION customers_name_words_update()
        """
    )


# How one rank group's page is read (a later revision reads large groups month by month).
GROUP_PAGE = """
                IF grp.estimate <= walk_above THEN
                    statement := format(
                        'WITH found AS MATERIALIZED (SELECT c.customer_id, c.activity_at'
                        ' FROM public.customers c WHERE c.organization_id = %L%s)'
                        ' SELECT found.customer_id, %L::float8 AS rank FROM found'
                        ' ORDER BY found.activity_at DESC, found.customer_id DESC LIMIT $1',
                        org, keyed_sql || group_sql, grp.rank);
                ELSE
                    statement := format(
                        'SELECT c.customer_id, %L::float8 AS rank FROM public.customers c'
                        ' WHERE c.organization_id = %L%s'
                        ' ORDER BY c.activity_at DESC, c.customer_id DESC LIMIT $1',
                        grp.rank, org, walk_sql || group_sql);
                END IF;
                RETURN NEXT;"""


def search_steps_sql(
    *,
    declare: str = "",
    completed: str = "t.word_number = typed_count",
    per_word: str = "",
    page: str = GROUP_PAGE,
) -> str:
    """customer_search_steps: the statements of one search, in the order their rows are listed.

    `declare`, `completed` (which typed words may be the beginning of a name word: here the last
    one), `per_word` (run for each typed word of a rank group) and `page` (emits the group's page
    statements) are the points a later revision may change; the defaults are this one's.
    """
    # Values are inlined (quoted by format) so each statement is planned for its own words.
    # 'page' statements take the number of rows still wanted as $1; 'count' statements list
    # the matching ids.
    return rf"""
        CREATE OR REPLACE FUNCTION customer_search_steps({SEARCH_ARGUMENTS}, p_limit INTEGER DEFAULT 26)
        RETURNS TABLE (purpose TEXT, statement TEXT)
        STABLE {SEARCH_SETTINGS}
        AS $$
        DECLARE
            org UUID := nullif(current_setting('app.current_organization_id', true), '')::uuid;
            terms RECORD;
            filters TEXT;
            after_email TEXT;
            after_activity TIMESTAMPTZ;
            after_phone TEXT;
            after_document TEXT;
            key_ranks FLOAT8[] := '{{}}';
            key_conditions TEXT[] := '{{}}';
            key_orders TEXT[] := '{{}}';
            key_cursors TEXT[] := '{{}}';
            key_sql TEXT;
            typed TEXT[];
            typed_count INTEGER;
            candidate_positions INTEGER[];
            candidate_words TEXT[];
            candidate_scores FLOAT8[];
            candidate_frequencies FLOAT8[];
            organization_size FLOAT8;
            walk_above FLOAT8;
            score_sql TEXT;
            top_group BOOLEAN := true;
            group_sql TEXT;
            keyed_sql TEXT;
            walk_sql TEXT;
            group_words TEXT[];
            grp RECORD;{declare}
        BEGIN
            SELECT * INTO terms FROM public.customer_search_terms(p_query);
            IF org IS NULL OR terms.normalized = '' THEN
                RETURN;  -- fail closed: no organization, no results
            END IF;
            filters := concat(
                ' AND c.status = ' || quote_literal(p_status),
                ' AND c.customer_type = ' || quote_literal(p_type),
                ' AND c.loyalty_tier = ' || quote_literal(p_tier),
                ' AND coalesce((SELECT s.segment_code FROM public.customer_segments s'
                || ' WHERE s.organization_id = c.organization_id'
                || ' AND s.customer_id = c.customer_id), ''new'') = ' || quote_literal(p_segment)
            );
            IF p_after_id IS NOT NULL THEN
                SELECT c.email, c.activity_at, c.phone_digits, c.document_key
                INTO after_email, after_activity, after_phone, after_document
                FROM public.customers c
                WHERE c.organization_id = org AND c.customer_id = p_after_id;
                IF NOT FOUND THEN
                    RETURN;  -- the last customer shown is gone: no reliable next page
                END IF;
            END IF;

            -- An email (one token with '@' or '.'): prefix matches in index order.
            IF strpos(terms.normalized, ' ') = 0 AND terms.normalized ~ '[@.]' THEN
                purpose := 'page';
                statement := format(
                    'SELECT c.customer_id, 3.0::float8 AS rank FROM public.customers c'
                    ' WHERE c.organization_id = %L AND c.email LIKE %L%s%s'
                    ' ORDER BY c.email USING OPERATOR(pg_catalog.~<~) LIMIT $1',
                    org, terms.pattern || '%',
                    ' AND c.email OPERATOR(pg_catalog.~>~) ' || quote_literal(after_email),
                    filters);
                RETURN NEXT;
                purpose := 'count';
                statement := format(
                    'SELECT c.customer_id FROM public.customers c'
                    ' WHERE c.organization_id = %L AND c.email LIKE %L%s',
                    org, terms.pattern || '%', filters);
                RETURN NEXT;
                RETURN;
            END IF;

            -- A document number (the exact one first, then prefixes) and a phone in any format
            -- (digits compared, with or without Panama's 507): one statement per rank, each read
            -- in its index's order with a LIMIT, a customer listed under its best key only.
            IF length(terms.document) >= 2 AND terms.document ~ '[0-9]'
               AND strpos(terms.normalized, '@') = 0 THEN
                key_ranks := key_ranks || 2.7::float8;
                key_conditions := key_conditions || format('c.document_key = %L', terms.document);
                key_orders := key_orders || 'c.customer_id DESC'::text;
                key_cursors := key_cursors || format('c.customer_id < %L::uuid', p_after_id);
            END IF;
            IF length(terms.digits) >= 3 AND terms.normalized ~ '^[0-9 +().-]+$' THEN
                key_ranks := key_ranks || ARRAY[2.5, 2.4]::float8[];
                key_conditions := key_conditions || ARRAY[
                    format('c.phone_digits LIKE %L', terms.digits || '%'),
                    format('c.phone_digits LIKE %L', '507' || terms.digits || '%')];
                key_orders := key_orders
                    || array_fill('c.phone_digits USING OPERATOR(pg_catalog.~<~)'::text, ARRAY[2]);
                key_cursors := key_cursors || array_fill(
                    format('c.phone_digits OPERATOR(pg_catalog.~>~) %L', after_phone), ARRAY[2]);
            END IF;
            IF 2.7::float8 = ANY (key_ranks) THEN
                key_ranks := key_ranks || 2.0::float8;
                key_conditions := key_conditions
                    || format('c.document_key LIKE %L', terms.document || '%');
                key_orders := key_orders || 'c.document_key USING OPERATOR(pg_catalog.~<~)'::text;
                key_cursors := key_cursors
                    || format('c.document_key OPERATOR(pg_catalog.~>~) %L', after_document);
            END IF;
            FOR i IN 1..coalesce(cardinality(key_ranks), 0) LOOP
                key_sql := key_conditions[i] || CASE WHEN i > 1 THEN
                    ' AND NOT (' || array_to_string(key_conditions[1:i - 1], ' OR ') || ')'
                    ELSE '' END || filters;
                purpose := 'count';
                statement := format(
                    'SELECT c.customer_id FROM public.customers c'
                    ' WHERE c.organization_id = %L AND %s', org, key_sql);
                RETURN NEXT;
                CONTINUE WHEN key_ranks[i] > p_after_rank;  -- listed before the cursor
                purpose := 'page';
                statement := format(
                    'SELECT c.customer_id, %L::float8 AS rank FROM public.customers c'
                    ' WHERE c.organization_id = %L AND %s%s ORDER BY %s LIMIT $1',
                    key_ranks[i], org, key_sql,
                    CASE WHEN key_ranks[i] = p_after_rank THEN ' AND ' || key_cursors[i] END,
                    key_orders[i]);
                RETURN NEXT;
            END LOOP;

            -- Names: every typed word (digits too) must match one of its dictionary candidates.
            -- A phone or document number (only digits and separators: 7 digits or more, or
            -- several groups) is no name; a single short number ("321") may be one.
            IF terms.normalized ~ '^[0-9 +().-]+$'
               AND (length(terms.digits) >= 7 OR terms.normalized ~ '[0-9][^0-9]+[0-9]') THEN
                RETURN;
            END IF;
            typed := ARRAY(
                SELECT word FROM regexp_split_to_table(terms.normalized, '[^[:alnum:]]+') AS word
                WHERE word <> '' LIMIT 6
            );
            typed_count := cardinality(typed);
            IF typed_count = 0 THEN
                RETURN;
            END IF;
            SELECT array_agg(k.word_number), array_agg(k.word), array_agg(k.score),
                   array_agg(k.frequency)
            INTO candidate_positions, candidate_words, candidate_scores, candidate_frequencies
            FROM unnest(typed) WITH ORDINALITY AS t(typed_word, word_number)
            CROSS JOIN LATERAL (
                SELECT DISTINCT ON (found.word) t.word_number::integer AS word_number, found.word,
                       found.score, found.frequency::float8 AS frequency
                FROM (
                    SELECT d.word, 1.0::float8 AS score, d.frequency
                    FROM public.customer_name_words d
                    WHERE d.organization_id = org AND d.word = t.typed_word
                    UNION ALL
                    -- the word being typed: its most frequent completions
                    (SELECT d.word, 0.9::float8, d.frequency FROM public.customer_name_words d
                     WHERE {completed} AND d.organization_id = org
                       AND d.word > t.typed_word AND d.word < t.typed_word || chr(1114111)
                       AND starts_with(d.word, t.typed_word)
                     ORDER BY d.frequency DESC, d.word LIMIT 8)
                    UNION ALL
                    -- one typo: the nearest spellings by trigram similarity
                    (SELECT d.word,
                            least(round(public.similarity(d.word, t.typed_word)::numeric, 1),
                                  0.8)::float8,
                            d.frequency
                     FROM public.customer_name_words d
                     WHERE length(t.typed_word) >= 3 AND t.typed_word ~ '[a-z]'
                       AND d.organization_id = org
                     ORDER BY d.word OPERATOR(public.<->) t.typed_word, d.word LIMIT 5)
                ) AS found
                WHERE found.score >= 0.3
                ORDER BY found.word, found.score DESC
            ) AS k;
            IF (SELECT count(DISTINCT n) FROM unnest(candidate_positions) AS n)
               < typed_count THEN
                RETURN;  -- a typed word matches nothing in this organization
            END IF;
            -- A customer's rank: the mean over typed words of its best candidate's score.
            score_sql := format(
                ' AND (SELECT round(avg(b.best)::numeric, 2)::float8 FROM ('
                'SELECT max(k.score) AS best FROM unnest(%L::int[], %L::text[], %L::float8[])'
                ' AS k(word_number, word, score) WHERE k.word = ANY (c.name_words)'
                ' GROUP BY k.word_number) AS b) = ',
                candidate_positions, candidate_words, candidate_scores);
            IF typed_count = 1 AND filters = '' THEN
                -- every candidate of a single word is a match: its frequency is a lower bound
                purpose := 'known_count';
                statement := (SELECT max(f) FROM unnest(candidate_frequencies) AS f)::bigint;
                RETURN NEXT;
            END IF;

            -- One page statement per rank, best first. The expected size of a rank (from the
            -- word frequencies, assuming independent words) picks how it is read: a small one
            -- from the GIN index and sorted (cost ~ its size); a large one by walking the
            -- activity index until the page is full (cost ~ page x customers / its size), which
            -- stops after a few hundred rows instead of sorting them all.
            organization_size := greatest(
                (SELECT reltuples FROM pg_class WHERE oid = 'public.customers'::regclass), 1);
            walk_above := greatest(sqrt(coalesce(p_limit, 2147483647) * organization_size), 200);
            FOR grp IN
                WITH RECURSIVE classes AS (
                    SELECT k.word_number, k.score, sum(k.frequency) AS frequency
                    FROM unnest(candidate_positions, candidate_scores, candidate_frequencies)
                        AS k(word_number, score, frequency)
                    GROUP BY k.word_number, k.score
                ),
                combinations (word_number, score_sum, estimate, scores) AS (
                    SELECT 0, 0::float8, organization_size, ARRAY[]::float8[]
                    UNION ALL
                    SELECT classes.word_number, combinations.score_sum + classes.score,
                           combinations.estimate * classes.frequency / organization_size,
                           combinations.scores || classes.score
                    FROM combinations JOIN classes ON classes.word_number = combinations.word_number + 1
                )
                SELECT round((score_sum / typed_count)::numeric, 2)::float8 AS rank,
                       sum(estimate) AS estimate, array_agg(scores) AS scores
                FROM combinations WHERE combinations.word_number = typed_count
                GROUP BY 1 ORDER BY 1 DESC
            LOOP
                keyed_sql := '';  -- read through the GIN index
                walk_sql := '';  -- not the indexed expression: the activity index leads
                FOR i IN 1..typed_count LOOP
                    group_words := ARRAY(
                        SELECT k.word
                        FROM unnest(candidate_positions, candidate_words, candidate_scores)
                            AS k(word_number, word, score)
                        WHERE k.word_number = i AND k.score IN (
                            SELECT grp.scores[row_number][i]
                            FROM generate_subscripts(grp.scores, 1) AS row_number));
                    keyed_sql := keyed_sql || format(
                        ' AND public.search_word_keys(c.organization_id, c.name_words)'
                        ' OPERATOR(pg_catalog.&&) %L::text[]',
                        public.search_word_keys(org, group_words));
                    walk_sql := walk_sql || format(
                        ' AND c.name_words OPERATOR(pg_catalog.&&) %L::text[]', group_words);{per_word}
                END LOOP;
                -- Nobody in the best rank can rank higher: its rows need no scoring.
                group_sql := CASE WHEN top_group THEN '' ELSE score_sql || quote_literal(grp.rank)
                             END || filters;
                top_group := false;
                purpose := 'count';
                statement := format(
                    'SELECT c.customer_id FROM public.customers c WHERE c.organization_id = %L%s%s',
                    org, keyed_sql, group_sql);
                RETURN NEXT;
                CONTINUE WHEN p_after_rank < 2 AND grp.rank > p_after_rank;
                IF p_after_rank < 2 AND grp.rank = p_after_rank THEN
                    group_sql := group_sql || format(
                        ' AND (c.activity_at, c.customer_id) < (%L::timestamptz, %L::uuid)',
                        after_activity, p_after_id);
                END IF;
                purpose := 'page';{page}
            END LOOP;
        END
        $$
    """


def _search_functions_create():
    op.execute(search_steps_sql())
    op.execute("REVOKE ALL ON FUNCTION customer_search_steps FROM PUBLIC")
    op.execute(
        f"""
        CREATE FUNCTION customer_search({SEARCH_ARGUMENTS}, p_limit INTEGER DEFAULT 50)
        RETURNS TABLE (customer_id UUID, rank DOUBLE PRECISION)
        STABLE {SEARCH_SETTINGS}
        AS $$
        DECLARE
            step RECORD;
            remaining INTEGER := coalesce(p_limit, 2147483647);
            listed INTEGER;
        BEGIN
            FOR step IN
                SELECT * FROM public.customer_search_steps(
                    p_query, p_status, p_type, p_tier, p_segment, p_after_rank, p_after_id,
                    p_limit)
                WHERE purpose = 'page'
            LOOP
                EXIT WHEN remaining <= 0;
                RETURN QUERY EXECUTE step.statement USING remaining;
                GET DIAGNOSTICS listed = ROW_COUNT;
                remaining := remaining - listed;
            END LOOP;
        END
        $$
        """
    )
    # The plans of the statements a search runs, so tests and operators can prove the indexes.
    op.execute(
        f"""
        CREATE FUNCTION customer_search_explain({SEARCH_ARGUMENTS}, p_limit INTEGER DEFAULT 50)
        RETURNS SETOF JSON
        VOLATILE {SEARCH_SETTINGS}
        AS $$
        DECLARE
            step RECORD;
        BEGIN
            FOR step IN
                SELECT * FROM public.customer_search_steps(
                    p_query, p_status, p_type, p_tier, p_segment, p_after_rank, p_after_id,
                    p_limit)
            LOOP
                IF step.purpose = 'page' THEN
                    RETURN QUERY EXECUTE 'EXPLAIN (FORMAT JSON) ' || step.statement
                    USING p_limit;
                ELSIF step.purpose = 'count' THEN
                    RETURN QUERY EXECUTE 'EXPLAIN (FORMAT JSON) ' || step.statement;
                END IF;
            END LOOP;
        END
        $$
        """
    )
    # How many customers a search finds, counting at most p_cap of them.
    op.execute(
        f"""
        CREATE FUNCTION customer_search_count(
            p_query TEXT,
            p_status TEXT DEFAULT NULL,
            p_type TEXT DEFAULT NULL,
            p_tier TEXT DEFAULT NULL,
            p_segment TEXT DEFAULT NULL,
            p_cap INTEGER DEFAULT 1001
        )
        RETURNS INTEGER
        STABLE {SEARCH_SETTINGS}
        AS $$
        DECLARE
            known BIGINT;
            matches TEXT;
            counted INTEGER;
        BEGIN
            SELECT max(s.statement::bigint) FILTER (WHERE s.purpose = 'known_count'),
                   string_agg(s.statement, ' UNION ALL ' ORDER BY s.step)
                       FILTER (WHERE s.purpose = 'count')
            INTO known, matches
            FROM public.customer_search_steps(p_query, p_status, p_type, p_tier, p_segment)
                WITH ORDINALITY AS s(purpose, statement, step);
            IF known >= p_cap THEN
                RETURN p_cap;  -- the dictionary already knows there are more
            END IF;
            IF matches IS NULL THEN
                RETURN 0;
            END IF;
            -- Branches run in rank order and stop at the cap; a customer found by two of them
            -- (a phone and a word of digits) counts once.
            EXECUTE format(
                'SELECT count(DISTINCT m.customer_id) FROM (%s LIMIT $1) AS m', matches
            ) INTO counted USING p_cap + 50;
            RETURN least(counted, p_cap);
        END
        $$
        """
    )
    for name in ("customer_search", "customer_search_explain", "customer_search_count"):
        op.execute(f"REVOKE ALL ON FUNCTION {name} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {name} TO {app_role()}")


def downgrade():
    op.execute(
        "CREATE INDEX idx_customers_search_name ON customers USING gin (search_name gin_trgm_ops)"
    )
    op.execute(
        "CREATE INDEX idx_customers_name_nearest ON customers "
        "USING gist (organization_id, search_name gist_trgm_ops)"
    )
    op.execute("DROP FUNCTION customer_search_count")
    op.execute("DROP FUNCTION customer_search_explain")
    op.execute("DROP FUNCTION customer_search")
    op.execute("DROP FUNCTION customer_search_steps")
    earlier_revision("20261128_0002_customer_search.py").search_functions_create()
    for operation in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER customers_name_words_{operation} ON customers")
        op.execute(f"DROP FUNCTION customers_name_words_{operation}()")
    op.execute("DROP FUNCTION customer_name_words_remove(JSONB)")
    op.execute("DROP FUNCTION customer_name_words_add(JSONB)")
    op.execute("DROP TABLE customer_name_words")
    op.execute("ALTER TABLE customers DROP COLUMN name_words")
    op.execute("DROP FUNCTION search_word_keys(UUID, TEXT[])")
    op.execute("DROP FUNCTION search_words(TEXT)")
