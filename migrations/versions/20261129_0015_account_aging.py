"""Per-account aging kept by the ledger: `credit_account_aging`, one row per account with
outstanding charges, its amounts by aging bucket as of `computed_on`.

Ledger writes keep the row of the accounts they touch (statement triggers on `credit_usages` and
`credit_payment_allocations` recompute those accounts, set-based, in the same transaction); the
daily overdue job moves the other rows to the new day (`credit_aging_refresh_stale`). The aging
report reads the rows computed today as they are and recomputes any older row from the ledger
(`credit_account_buckets`, the one definition of an account's buckets), so the report is exact
whether or not the daily job has run, and costs one index scan of a narrow table when it has.

Revision ID: 0015_account_aging
Revises: 0012_reports
Create Date: 2026-11-29
"""

from alembic import op

from portal.schema import grant_app, in_every_organization, tenant_rls

revision = "0015_account_aging"
down_revision = "0012_reports"
branch_labels = None
depends_on = None

BUCKETS = ("not_due", "days_1_30", "days_31_60", "days_61_90", "days_90_plus")
OVERDUE = " + ".join(BUCKETS[1:])
# The business day of the transaction (Panama), as portal.clock.today() computes it.
TODAY = "(now() AT TIME ZONE 'America/Panama')::date"
OUTSTANDING = "u.status IN ('pending', 'overdue')"


def upgrade():
    amounts = ",\n".join(f"{bucket} NUMERIC(14, 2) NOT NULL DEFAULT 0" for bucket in BUCKETS)
    op.execute(
        f"""
        CREATE TABLE credit_account_aging (
            organization_id UUID NOT NULL,
            credit_account_id UUID NOT NULL,
            computed_on DATE NOT NULL,
            {amounts},
            overdue NUMERIC(14, 2) GENERATED ALWAYS AS ({OVERDUE}) STORED,
            total NUMERIC(14, 2) GENERATED ALWAYS AS (not_due + {OVERDUE}) STORED,
            PRIMARY KEY (organization_id, credit_account_id),
            FOREIGN KEY (organization_id, credit_account_id)
                REFERENCES credit_accounts (organization_id, credit_account_id)
        )
        """
    )
    # The report's default order (largest overdue first) and the stale-row probe.
    op.execute(
        "CREATE INDEX idx_credit_aging_overdue ON credit_account_aging "
        "(organization_id, overdue DESC, credit_account_id DESC) WHERE total > 0"
    )
    for bucket in BUCKETS:  # the report filtered by one bucket, largest first
        op.execute(
            f"CREATE INDEX idx_credit_aging_{bucket} ON credit_account_aging "
            f"(organization_id, {bucket} DESC, credit_account_id DESC) WHERE {bucket} > 0"
        )
    op.execute(
        "CREATE INDEX idx_credit_aging_computed ON credit_account_aging "
        "(organization_id, computed_on)"
    )
    tenant_rls("credit_account_aging")
    grant_app("credit_account_aging")
    # The organization's totals per day the rows were computed on, in 16 shards by account so
    # concurrent ledger writes on different accounts rarely wait on the same row.
    op.execute(
        f"""
        CREATE TABLE credit_aging_totals (
            organization_id UUID NOT NULL REFERENCES organizations (organization_id),
            computed_on DATE NOT NULL,
            shard SMALLINT NOT NULL CHECK (shard BETWEEN 0 AND 15),
            accounts INTEGER NOT NULL,
            {amounts},
            total NUMERIC(14, 2) GENERATED ALWAYS AS (not_due + {OVERDUE}) STORED,
            PRIMARY KEY (organization_id, computed_on, shard)
        )
        """
    )
    tenant_rls("credit_aging_totals")
    grant_app("credit_aging_totals")

    late = "p_today - u.due_date"
    sums = ",\n".join(
        f"coalesce(sum(outstanding) FILTER (WHERE {condition}), 0)"
        for condition in (
            "late <= 0",
            "late BETWEEN 1 AND 30",
            "late BETWEEN 31 AND 60",
            "late BETWEEN 61 AND 90",
            "late > 90",
        )
    )
    op.execute(
        f"""
        CREATE FUNCTION credit_account_buckets(p_account UUID, p_today DATE)
        RETURNS TABLE ({", ".join(f"{bucket} NUMERIC" for bucket in BUCKETS)})
        LANGUAGE sql STABLE SET search_path = pg_catalog, public AS $$
            SELECT {sums}
            FROM (
                SELECT {late} AS late,
                       u.amount - coalesce((SELECT sum(x.amount)
                                            FROM credit_payment_allocations x
                                            WHERE x.organization_id = u.organization_id
                                              AND x.usage_id = u.usage_id), 0) AS outstanding
                FROM credit_usages u
                WHERE u.credit_account_id = p_account AND {OUTSTANDING}
            ) AS owed
        $$
        """
    )
    columns = ", ".join(BUCKETS)
    op.execute(
        f"""
        CREATE FUNCTION credit_aging_refresh(p_accounts UUID[]) RETURNS VOID
        LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
        DECLARE today DATE := {TODAY};
        BEGIN
            IF cardinality(p_accounts) = 0 THEN
                RETURN;
            END IF;
            DELETE FROM credit_account_aging WHERE credit_account_id = ANY (p_accounts);
            INSERT INTO credit_account_aging (organization_id, credit_account_id, computed_on,
                                              {columns})
            SELECT a.organization_id, a.credit_account_id, today, b.*
            FROM credit_accounts a
            CROSS JOIN LATERAL credit_account_buckets(a.credit_account_id, today) AS b
            WHERE a.credit_account_id = ANY (p_accounts)
              AND EXISTS (SELECT 1 FROM credit_usages u
                          WHERE u.credit_account_id = a.credit_account_id AND {OUTSTANDING})
            ON CONFLICT (organization_id, credit_account_id) DO UPDATE SET
                computed_on = EXCLUDED.computed_on,
                {", ".join(f"{bucket} = EXCLUDED.{bucket}" for bucket in BUCKETS)};
        END
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION credit_aging_refresh_stale() RETURNS INTEGER
        LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
        DECLARE
            today DATE := {TODAY};
            moved INTEGER;
        BEGIN
            UPDATE credit_account_aging g
            SET (computed_on, {columns}) = (
                SELECT today, b.* FROM credit_account_buckets(g.credit_account_id, today) AS b
            )
            WHERE g.computed_on < today;
            GET DIAGNOSTICS moved = ROW_COUNT;
            RETURN moved;
        END
        $$
        """
    )
    # The totals follow the rows: each statement on credit_account_aging adds its new rows and
    # subtracts its old ones, grouped per (day, shard), shards locked in order.
    signed = ", ".join(f"sum(sign * {bucket})" for bucket in BUCKETS)
    sides = {
        "new_rows": f"SELECT 1 AS sign, organization_id, computed_on, credit_account_id, {columns}"
        " FROM new_rows",
        "old_rows": f"SELECT -1 AS sign, organization_id, computed_on, credit_account_id, {columns}"
        " FROM old_rows",
    }
    for operation, tables in (
        ("insert", ["new_rows"]),
        ("update", ["old_rows", "new_rows"]),
        ("delete", ["old_rows"]),
    ):
        emptied = (
            "DELETE FROM credit_aging_totals t WHERE t.accounts = 0"
            " AND (t.organization_id, t.computed_on) IN"
            " (SELECT organization_id, computed_on FROM old_rows);"
            if "old_rows" in tables
            else ""
        )
        op.execute(
            f"""
            CREATE FUNCTION credit_aging_totals_{operation}() RETURNS TRIGGER
            LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
            BEGIN
                INSERT INTO credit_aging_totals AS t (organization_id, computed_on, shard,
                                                      accounts, {columns})
                SELECT organization_id, computed_on,
                       abs(hashtext(credit_account_id::text)) % 16 AS shard, sum(sign), {signed}
                FROM ({" UNION ALL ".join(sides[table] for table in tables)}) AS changes
                GROUP BY 1, 2, 3
                ORDER BY 1, 2, 3
                ON CONFLICT (organization_id, computed_on, shard) DO UPDATE SET
                    accounts = t.accounts + EXCLUDED.accounts,
                    {", ".join(f"{bucket} = t.{bucket} + EXCLUDED.{bucket}" for bucket in BUCKETS)};
                {emptied}
                RETURN NULL;
            END
            $$
            """
        )
        transition = " ".join(
            f"{'OLD' if table == 'old_rows' else 'NEW'} TABLE AS {table}" for table in tables
        )
        op.execute(
            f"CREATE TRIGGER credit_aging_totals_{operation} AFTER {operation.upper()} "
            f"ON credit_account_aging REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION credit_aging_totals_{operation}()"
        )

    # Which accounts a ledger statement touched: new or removed outstanding usages, a usage that
    # entered or left the outstanding states or changed amount or due date, new allocations.
    # Overdue marking (pending -> overdue) changes no amount and touches no account.
    triggers = {
        "credit_usages_aging_insert": (
            "INSERT ON credit_usages REFERENCING NEW TABLE AS changed",
            "SELECT u.credit_account_id FROM changed u WHERE " + OUTSTANDING,
        ),
        "credit_usages_aging_delete": (
            "DELETE ON credit_usages REFERENCING OLD TABLE AS changed",
            "SELECT u.credit_account_id FROM changed u WHERE " + OUTSTANDING,
        ),
        "credit_usages_aging_update": (
            "UPDATE ON credit_usages REFERENCING OLD TABLE AS old_rows NEW TABLE AS u",
            f"""SELECT moved.credit_account_id
                FROM u JOIN old_rows o ON o.usage_id = u.usage_id
                CROSS JOIN LATERAL (VALUES (u.credit_account_id), (o.credit_account_id))
                    AS moved (credit_account_id)
                WHERE ({OUTSTANDING}) <> (o.status IN ('pending', 'overdue'))
                   OR u.amount <> o.amount OR u.due_date <> o.due_date
                   OR u.credit_account_id <> o.credit_account_id""",
        ),
        "credit_allocations_aging_insert": (
            "INSERT ON credit_payment_allocations REFERENCING NEW TABLE AS changed",
            "SELECT u.credit_account_id FROM changed x "
            "JOIN credit_usages u ON u.organization_id = x.organization_id "
            "AND u.usage_id = x.usage_id",
        ),
    }
    for name, (event, accounts) in triggers.items():
        op.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS TRIGGER
            LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
            BEGIN
                PERFORM credit_aging_refresh(ARRAY(
                    SELECT DISTINCT touched.credit_account_id FROM ({accounts}) AS touched
                    ORDER BY 1));
                RETURN NULL;
            END
            $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )

    in_every_organization(
        """
        PERFORM credit_aging_refresh(ARRAY(
            SELECT DISTINCT u.credit_account_id FROM credit_usages u
            WHERE u.status IN ('pending', 'overdue')));
        """
    )
    op.execute("ANALYZE credit_account_aging")


def downgrade():
    op.execute("DROP TRIGGER credit_allocations_aging_insert ON credit_payment_allocations")
    for operation in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER credit_usages_aging_{operation} ON credit_usages")
        op.execute(f"DROP FUNCTION credit_usages_aging_{operation}()")
    op.execute("DROP FUNCTION credit_allocations_aging_insert()")
    op.execute("DROP FUNCTION credit_aging_refresh_stale()")
    op.execute("DROP FUNCTION credit_aging_refresh(UUID[])")
    op.execute("DROP FUNCTION credit_account_buckets(UUID, DATE)")
    op.execute("DROP TABLE credit_account_aging")
    for operation in ("insert", "update", "delete"):
        op.execute(f"DROP FUNCTION credit_aging_totals_{operation}()")
    op.execute("DROP TABLE credit_aging_totals")
