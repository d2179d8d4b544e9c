"""The organization scope lasts one transaction, as transaction pooling (pgbouncer) requires.

`.ci/run` runs this module a third time through pgbouncer in transaction mode with one server
connection per pool, so the second client below is served by the very server connection the
first one just used.
"""

import sqlalchemy as sa

from portal.extensions import db
from tests import factories

SCOPE = sa.text("SELECT set_config('app.current_organization_id', :org, true)")
SETTING = sa.text("SELECT coalesce(current_setting('app.current_organization_id', true), '')")
CUSTOMERS = sa.text("SELECT count(*) FROM customers")


def test_the_organization_scope_ends_with_its_transaction(app, org_a):
    factories.customer_create(org_a.organization_id)
    with app.app_context(), db.engine.connect() as first, db.engine.connect() as second:
        with first.begin():
            first.execute(SCOPE, {"org": str(org_a.organization_id)})
            assert first.scalar(CUSTOMERS) == 1
        with second.begin():  # a later transaction, possibly on the same server connection
            assert second.scalar(SETTING) == ""
            assert second.scalar(CUSTOMERS) == 0
        with first.begin():
            assert first.scalar(SETTING) == ""
            assert first.scalar(CUSTOMERS) == 0
