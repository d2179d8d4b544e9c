"""Name search among many organizations: no organization-wide bitmap.

Measured with `bench.organizations` (ten organizations of 100,000 customers on one server,
beside one organization alone; docs/scaling.md). The name statements read through the GIN
indexes keyed by organization and word (`search_word_keys`, `search_word_month_keys`) and also
said `c.organization_id = …`. Alone, the planner ignores that condition; with the organization a
tenth of the table it ANDed a bitmap of the whole organization (100,000 rows, ~2 ms) to a
posting list of a few hundred, so a misspelt surname took 4 to 5 ms instead of 2. The keys
already name the organization, so the condition stays as a filter (`IS TRUE`: never an index
condition), the guard that the function reads nothing of another organization.

Left as it was: the expected size of a rank group, and the point where a group is read by
walking the activity index, are still computed against the whole table's row count, not the
organization's. The planner's per-organization estimate is out of the function's reach
(`pg_stats` shows nothing of a table under forced RLS, even to its owner, and `EXPLAIN` is
refused in a STABLE function); a per-organization customer count kept by the nightly job would
serve.

Revision ID: 0028_search_tenants
Revises: 0027_routes
Create Date: 2026-12-07
"""

from alembic import op

from portal.schema import earlier_revision

revision = "0028_search_tenants"
down_revision = "0027_routes"
branch_labels = None
depends_on = None

# (as revision 0016 wrote it, as this one does); each must occur in the function's text.
EDITS = (
    (
        "' FROM public.customers c WHERE c.organization_id = %L%s)'",
        "' FROM public.customers c WHERE (c.organization_id = %L) IS TRUE%s)'",
    ),
    (
        "'SELECT c.customer_id FROM public.customers c WHERE c.organization_id = %L%s%s'",
        "'SELECT c.customer_id FROM public.customers c WHERE (c.organization_id = %L) IS TRUE%s%s'",
    ),
)


def search_steps_sql() -> str:
    """customer_search_steps as this revision defines it (a later revision edits it)."""
    statement = earlier_revision("20261129_0016_search_months.py").search_steps_sql()
    for before, after in EDITS:
        if before not in statement:
            raise RuntimeError(f"customer_search_steps no longer contains {before!r}")
        statement = statement.replace(before, after)
    return statement


def upgrade():
    op.execute(search_steps_sql())


def downgrade():
    op.execute(earlier_revision("20261129_0016_search_months.py").search_steps_sql())
