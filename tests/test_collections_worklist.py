"""The worklist at scale: its order and filters read the collections state kept on the aging
rows (migration 0020), which stays right after contacts, promises, assignments and payments, and
keyset pages walk every filter completely and stably, whether the aging rows are current or not."""

import itertools
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import clock
from portal.collections.selectors import UNASSIGNED, WorklistFilters, worklist_page
from portal.collections.services import assignment_set
from portal.credit.services import usage_charge
from portal.extensions import db
from tests import factories
from tests.test_collections import (
    _contact,
    _order,
    _overdue_account,
    _pay,
    overdue_accounts,
)


@pytest.fixture
def overdue(org_a):
    """Ana, Beto, Carla overdue and Dora not yet due (tests/test_collections.py)."""
    return overdue_accounts(org_a)


STATE_DRIFT = """
    SELECT count(*) FROM credit_account_aging g
    CROSS JOIN LATERAL collection_account_state(g.credit_account_id) s
    WHERE (g.collector_id, g.next_action_on, g.last_contact_at, g.last_channel, g.last_outcome,
           g.promise_amount, g.promise_due_on, g.promise_broken) IS DISTINCT FROM
          (s.collector_id, s.next_action_on, s.last_contact_at, s.last_channel, s.last_outcome,
           s.promise_amount, s.promise_due_on, s.promise_broken)
"""


def _walk(org, filters: WorklistFilters, size: int) -> list:
    """Every page of the worklist under `filters`, `size` rows at a time: the account ids."""
    seen, cursor = [], None
    with factories.scoped(org.organization_id):
        while True:
            page = worklist_page(filters, cursor=cursor, size=size)
            seen += [row.credit_account_id for row in page.rows]
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor


def _drift(org) -> int:
    with factories.scoped(org.organization_id):
        return db.session.scalar(sa.text(STATE_DRIFT))


def _many(org, count: int) -> list:
    """`count` more overdue accounts, some with equal amounts (ties broken by account id)."""
    return [
        _overdue_account(org, f"Cliente{n}", [(5 + 20 * (n % 5), f"{10 + n % 3}.00")])[1]
        for n in range(count)
    ]


def test_keyset_pages_are_complete_and_stable_under_every_filter(login_as, org_a, overdue):
    _many(org_a, 9)
    client = login_as("credit_staff")
    client.get("/collections/")
    me = org_a.users["credit_staff"].staff_user_id
    client.post("/collections/assign", data={"account_ids": overdue["Ana"], "assignee": "me"})
    _contact(client, overdue["Beto"], next_action_on=clock.today().isoformat())
    for bucket, collector, quiet in itertools.product(
        (None, "days_1_30", "days_31_60", "days_90_plus"), (None, me, UNASSIGNED), (False, True)
    ):
        filters = WorklistFilters(bucket=bucket, collector=collector, quiet=quiet)
        whole = _walk(org_a, filters, 1000)
        assert _walk(org_a, filters, 1) == whole == _walk(org_a, filters, 4), filters
        assert len(set(whole)) == len(whole)
    everything = _walk(org_a, WorklistFilters(), 1000)
    assert len(everything) == 12 and everything[0] == overdue["Beto"]  # next action due today
    assert overdue["Dora"] not in everything  # nothing overdue


def test_state_follows_contacts_promises_assignments_and_payments(app, login_as, org_a, overdue):
    client = login_as("credit_staff")
    client.get("/collections/")
    due = (clock.today() + timedelta(days=2)).isoformat()
    _contact(client, overdue["Ana"], outcome="promise", promise_amount="30.00", promise_due_on=due)
    colleague = org_a.users["credit_approver"]
    with factories.scoped(org_a.organization_id):
        assignment_set(
            account_ids=[overdue["Carla"]],
            collector_id=colleague.staff_user_id,
            actor=org_a.users["credit_staff"],
        )
    assert _drift(org_a) == 0
    # A payment rewrites Ana's aging row: her promise, contact and place stay.
    _pay(org_a, overdue["Ana"], "40.00", clock.today())
    assert _drift(org_a) == 0
    page = client.get("/collections/").text
    row = page[page.find(f'id="worklist-{overdue["Ana"]}"') :]
    row = row[: row.find("</tr>")]
    assert "US$60.00" in row and "US$30.00" in row and "Llamada · Promesa de pago" in row
    assert _order(client.get(f"/collections/?collector={colleague.staff_user_id}").text) == [
        "Carla"
    ]
    # Paid in full: off the worklist; a new charge brings it back with its collector.
    _pay(org_a, overdue["Carla"], "50.00", clock.today())
    assert "Carla" not in _order(client.get("/collections/").text)
    _overdue_charge(org_a, overdue["Carla"])
    assert _order(client.get(f"/collections/?collector={colleague.staff_user_id}").text) == [
        "Carla"
    ]
    assert _drift(org_a) == 0


def _overdue_charge(org, account_id) -> None:
    with factories.scoped(org.organization_id):
        usage, _ = usage_charge(
            account_id=account_id,
            order_id=uuid.uuid4(),
            amount=Decimal("25.00"),
            actor=org.users["credit_staff"],
        )
        usage.due_date = clock.today() - timedelta(days=3)
        db.session.commit()


def test_rows_from_another_day_are_ordered_for_today(login_as, org_a, overdue):
    client = login_as("credit_staff")
    client.get("/collections/")
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()
    _contact(client, overdue["Carla"], next_action_on=tomorrow)
    current = _walk(org_a, WorklistFilters(), 2)
    assert current[-1] == overdue["Carla"]  # not due yet
    # The daily job has not run: a row from yesterday is recomputed for today, same answer.
    with factories.scoped(org_a.organization_id):
        db.session.execute(
            sa.text(
                "UPDATE credit_account_aging SET computed_on = computed_on - 1 "
                "WHERE credit_account_id = :account"
            ),
            {"account": overdue["Ana"]},
        )
        db.session.commit()
    assert _walk(org_a, WorklistFilters(), 2) == current
    # Tomorrow, Carla's next action is due: first, with every row recomputed for that day.
    with clock.pinned(clock.today() + timedelta(days=1)):
        assert _walk(org_a, WorklistFilters(), 2)[0] == overdue["Carla"]
