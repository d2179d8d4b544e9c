"""Collections: the overdue worklist (order, filters, paging), assignment, the contact log and
promises to pay settled by the nightly job; another organization sees and reaches none of it."""

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from psycopg import errors as pg_errors
from sqlalchemy.exc import ProgrammingError

from portal import clock
from portal.collections.selectors import WorklistFilters, worklist_page
from portal.collections.services import promises_settle
from portal.credit.jobs import overdue_mark
from portal.credit.services import payment_record, usage_charge
from portal.extensions import db
from tests import factories

HTMX = {"HX-Request": "true"}
TABLES = ("collection_contacts", "collection_promises", "collection_assignments")


def _overdue_account(org, first_name: str, charges: list[tuple[int, str]]):
    """A customer and an approved account with charges (days past due, amount)."""
    customer = factories.customer_create(org.organization_id, first_name=first_name)
    account = factories.credit_account_create(org.organization_id, customer.customer_id)
    with factories.scoped(org.organization_id):
        for days, amount in charges:
            usage, _ = usage_charge(
                account_id=account.credit_account_id,
                order_id=uuid.uuid4(),
                amount=Decimal(amount),
                actor=org.users["credit_staff"],
            )
            usage.due_date = clock.today() - timedelta(days=days)
            db.session.commit()
    return customer, account


def overdue_accounts(org) -> dict:
    """Four accounts: Ana US$100 at 10 days, Beto US$300 at 45, Carla US$50 at 95, and Dora
    not yet due (not in the worklist); their ids by name."""
    accounts = {
        "Ana": _overdue_account(org, "Ana", [(10, "100.00")]),
        "Beto": _overdue_account(org, "Beto", [(45, "300.00")]),
        "Carla": _overdue_account(org, "Carla", [(95, "50.00")]),
        "Dora": _overdue_account(org, "Dora", [(-5, "80.00")]),
    }
    return {name: account.credit_account_id for name, (_, account) in accounts.items()}


@pytest.fixture
def overdue(org_a):
    """The four accounts of `overdue_accounts` in organization A."""
    return overdue_accounts(org_a)


def _order(page: str, names=("Ana", "Beto", "Carla", "Dora")) -> list[str]:
    found = [(page.find(f">{name} "), name) for name in names if f">{name} " in page]
    return [name for _, name in sorted(found)]


def _count(org, table: str) -> int:
    with factories.scoped(org.organization_id):
        return db.session.scalar(sa.text(f"SELECT count(*) FROM {table}"))


def _contact(client, account_id, **fields):
    data = {"channel": "call", "outcome": "contacted", "note": "", "next_action_on": ""} | fields
    return client.post(f"/collections/accounts/{account_id}/contacts", data=data, headers=HTMX)


def test_worklist_lists_overdue_accounts_by_bucket_largest_first(login_as, overdue):
    client = login_as("credit_staff")
    page = client.get("/collections/")
    assert page.status_code == 200
    assert _order(page.text) == ["Beto", "Ana", "Carla"]  # Dora owes nothing overdue yet
    row = page.text[page.text.find(f'id="worklist-{overdue["Carla"]}"') :]
    assert "US$50.00" in row and "Sin contacto" in row and "Sin asignar" in row
    assert (clock.today() - timedelta(days=95)).strftime("%Y") in row  # oldest due date


def test_a_next_action_due_today_comes_first(login_as, overdue):
    client = login_as("credit_staff")
    client.get("/collections/")
    today = clock.today().isoformat()
    assert _contact(client, overdue["Carla"], next_action_on=today).status_code == 200
    later = (clock.today() + timedelta(days=3)).isoformat()
    assert _contact(client, overdue["Beto"], next_action_on=later).status_code == 200
    assert _order(client.get("/collections/").text) == ["Carla", "Beto", "Ana"]


def test_filters_by_bucket_collector_and_silence(login_as, org_a, overdue):
    client = login_as("credit_staff")
    assert _order(client.get("/collections/?bucket=days_90_plus").text) == ["Carla"]
    assert _order(client.get("/collections/?bucket=days_31_60").text) == ["Beto"]
    client.post("/collections/assign", data={"account_ids": overdue["Ana"], "assignee": "me"})
    me = org_a.users["credit_staff"].staff_user_id
    assert _order(client.get(f"/collections/?collector={me}").text) == ["Ana"]
    assert _order(client.get("/collections/?collector=none").text) == ["Beto", "Carla"]
    _contact(client, overdue["Beto"])
    assert _order(client.get("/collections/?quiet=y").text) == ["Ana", "Carla"]
    # Bad filters: a clear refusal, the whole list; a forged cursor is a 400.
    refused = client.get("/collections/?bucket=drop table&collector=nadie")
    assert refused.status_code == 422 and _order(refused.text) == ["Beto", "Ana", "Carla"]
    assert client.get("/collections/?after=x_y").status_code == 400
    assert login_as("branch_staff").get("/collections/").status_code == 403


def test_keyset_pages_follow_the_order_to_the_end(app, login_as, org_a, overdue):
    with factories.scoped(org_a.organization_id):
        first = worklist_page(WorklistFilters(), size=2)
        second = worklist_page(WorklistFilters(), size=2, cursor=first.next_cursor)
    names = [row.name.split()[0] for row in [*first.rows, *second.rows]]
    assert names == ["Beto", "Ana", "Carla"] and second.next_cursor is None
    client = login_as("credit_staff")
    more = client.get(f"/collections/?after={first.next_cursor}", headers=HTMX)
    assert more.status_code == 200 and _order(more.text) == ["Carla"]
    assert "<html" not in more.text


def test_assign_to_me_without_js_and_in_bulk_to_a_colleague(login_as, org_a, overdue):
    client = login_as("credit_staff")
    client.get("/collections/")
    single = client.post(
        "/collections/assign",
        data={"account_ids": overdue["Ana"], "assignee": "me", "bucket": "days_1_30"},
    )
    assert single.status_code == 303
    assert single.headers["Location"].endswith("/collections/?bucket=days_1_30")
    colleague = org_a.users["credit_approver"]
    bulk = client.post(
        "/collections/assign",
        data={
            "account_ids": [overdue["Ana"], overdue["Beto"]],
            "assignee": str(colleague.staff_user_id),
        },
        headers=HTMX,
    )
    assert bulk.status_code == 200
    assert f"Asignadas a {colleague.full_name}" in bulk.text and "Ana" in bulk.text
    assert f'id="collector-{overdue["Beto"]}" hx-swap-oob="true"' in bulk.text
    entries = factories.audit_entries(org_a.organization_id, overdue["Ana"])
    assigned = [entry for entry in entries if entry.action == "collections.assigned"]
    assert [entry.after["collector_id"] for entry in assigned] == [
        str(org_a.users["credit_staff"].staff_user_id),
        str(colleague.staff_user_id),
    ]
    assert assigned[1].before["collector_id"] == str(org_a.users["credit_staff"].staff_user_id)
    page = client.get(f"/collections/?collector={colleague.staff_user_id}").text
    assert _order(page) == ["Beto", "Ana"]


def test_assignment_refuses_bad_input_and_writes_nothing(login_as, org_a, org_b, overdue):
    client = login_as("credit_staff")
    client.get("/collections/")
    branch = org_a.users["branch_staff"].staff_user_id  # may not collect
    stranger = org_b.users["credit_staff"].staff_user_id
    for data in (
        {"account_ids": overdue["Ana"], "assignee": str(branch)},
        {"account_ids": overdue["Ana"], "assignee": str(stranger)},
        {"account_ids": overdue["Ana"], "assignee": "alguien"},
        {"assignee": "me"},
        {"account_ids": "no-es-un-id", "assignee": "me"},
        {"account_ids": [overdue["Ana"], str(uuid.uuid4())], "assignee": "me"},
    ):
        response = client.post("/collections/assign", data=data, headers=HTMX)
        assert response.status_code == 422, data
        assert 'class="flash flash-error"' in response.text
    assert _count(org_a, "collection_assignments") == 0
    assert not [
        entry
        for entry in factories.audit_entries(org_a.organization_id, overdue["Ana"])
        if entry.action == "collections.assigned"
    ]


def test_contact_log_on_account_and_customer_page_is_audited(login_as, org_a, overdue):
    client = login_as("credit_staff")
    account_page = client.get(f"/credit/accounts/{overdue['Ana']}").text
    assert 'id="contact-form"' in account_page and "Sin contactos registrados" in account_page
    logged = _contact(
        client, overdue["Ana"], channel="whatsapp", outcome="no_answer", note="Volver a llamar"
    )
    assert logged.status_code == 200
    assert "Contacto registrado. Cliente: Ana" in logged.text
    assert "WhatsApp · Sin respuesta" in logged.text and "Volver a llamar" in logged.text
    entries = factories.audit_entries(org_a.organization_id, overdue["Ana"])
    (entry,) = [entry for entry in entries if entry.action == "collections.contact_logged"]
    assert entry.after["channel"] == "whatsapp" and entry.after["note"] == "Volver a llamar"
    assert entry.actor_id == org_a.users["credit_staff"].staff_user_id
    # Without JS: back to the page it was sent from.
    plain = client.post(
        f"/collections/accounts/{overdue['Ana']}/contacts",
        data={"channel": "visit", "outcome": "contacted", "origin": "customer"},
    )
    assert plain.status_code == 303 and "/customers/" in plain.headers["Location"]
    customer_page = client.get(plain.headers["Location"]).text
    assert "Visita · Contactado" in customer_page and "WhatsApp · Sin respuesta" in customer_page


def test_contact_log_is_append_only_for_the_app_role(app, login_as, org_a, overdue):
    client = login_as("credit_staff")
    client.get("/collections/")
    _contact(client, overdue["Ana"])
    for statement in (
        "UPDATE collection_contacts SET note = 'x'",
        "DELETE FROM collection_contacts",
    ):
        with (
            app.app_context(),
            pytest.raises(ProgrammingError) as raised,
            db.engine.begin() as connection,
        ):
            connection.exec_driver_sql(
                "SELECT set_config('app.current_organization_id', %s, true)",
                (str(org_a.organization_id),),
            )
            connection.execute(sa.text(statement))
        assert isinstance(raised.value.orig, pg_errors.InsufficientPrivilege)


@pytest.mark.parametrize(
    "fields",
    [
        {"channel": "paloma"},
        {"outcome": "amenaza"},
        {"outcome": "promise"},  # no amount nor date
        {"outcome": "promise", "promise_amount": "50", "promise_due_on": "2020-01-01"},
        {"outcome": "promise", "promise_amount": "-5", "promise_due_on": "2099-01-01"},
        {"outcome": "contacted", "promise_amount": "50"},
        {"next_action_on": "2020-01-01"},
        {"next_action_on": "mañana"},
        {"note": "x" * 2001},
        {"note": "\u0007"},
    ],
)
def test_bad_contact_input_is_a_422_that_writes_nothing(login_as, org_a, overdue, fields):
    client = login_as("credit_staff")
    client.get("/collections/")
    response = _contact(client, overdue["Ana"], **fields)
    assert response.status_code == 422, response.text
    assert 'id="contact-form"' in response.text
    plain = client.post(
        f"/collections/accounts/{overdue['Ana']}/contacts",
        data={"channel": "call", "outcome": "contacted"} | fields,
    )
    # Without htmx: Post/Redirect/Get to the account, which shows the refused form once.
    assert plain.status_code == 303
    assert plain.headers["Location"] == f"/credit/accounts/{overdue['Ana']}"
    kept = client.get(plain.headers["Location"])
    assert kept.status_code == 422 and "<html" in kept.text and 'id="contact-form"' in kept.text
    assert client.get(plain.headers["Location"]).status_code == 200  # once
    assert _count(org_a, "collection_contacts") == 0 and _count(org_a, "collection_promises") == 0


def _settle(org, day: date) -> dict:
    with clock.pinned(day), factories.scoped(org.organization_id):
        return promises_settle()


def _pay(org, account_id, amount: str, day: date) -> None:
    with clock.pinned(day), factories.scoped(org.organization_id):
        payment_record(
            account_id=account_id,
            amount=Decimal(amount),
            method="cash",
            reference=None,
            payment_date=day,
            key=uuid.uuid4(),
            actor=org.users["credit_staff"],
        )


def test_promises_kept_and_broken_on_a_fixed_clock(app, login_as, org_a, overdue):
    day = clock.today()
    client = login_as("credit_staff")
    client.get("/collections/")
    due = (day + timedelta(days=3)).isoformat()
    with clock.pinned(day):
        for name, amount in (("Ana", "60.00"), ("Carla", "50.00")):
            response = _contact(
                client, overdue[name], outcome="promise", promise_amount=amount, promise_due_on=due
            )
            assert response.status_code == 200, response.text
    page = client.get("/collections/").text
    row = page[page.find(f'id="worklist-{overdue["Ana"]}"') :]
    assert "US$60.00" in row[: row.find("</tr>")]
    # Ana pays 40 then 20 before the date: kept the day it is covered; Carla pays nothing.
    _pay(org_a, overdue["Ana"], "40.00", day + timedelta(days=1))
    assert _settle(org_a, day + timedelta(days=1)) == {"kept": 0, "broken": 0}
    _pay(org_a, overdue["Ana"], "20.00", day + timedelta(days=2))
    assert _settle(org_a, day + timedelta(days=2)) == {"kept": 1, "broken": 0}
    assert _settle(org_a, day + timedelta(days=3)) == {"kept": 0, "broken": 0}  # due today
    with clock.pinned(day + timedelta(days=4)), app.app_context():
        from portal.db import organization_scope

        with organization_scope(org_a.organization_id):
            assert overdue_mark()["promises"] == {"kept": 0, "broken": 1}
    entries = factories.audit_entries(org_a.organization_id, overdue["Carla"])
    (settled,) = [entry for entry in entries if entry.action == "collections.promise_settled"]
    assert settled.after["state"] == "broken" and settled.actor_label == "system"
    # The broken promise goes to the top, and is what the filter finds.
    page = client.get("/collections/").text
    assert _order(page)[0] == "Carla" and "Promesa incumplida" in page
    assert _order(client.get("/collections/?broken=y").text) == ["Carla"]
    log = client.get(f"/credit/accounts/{overdue['Ana']}").text
    assert "Cumplida" in log
    # A new contact follows it up: back to the ordinary order.
    _contact(client, overdue["Carla"], outcome="no_answer")
    assert _order(client.get("/collections/?broken=y").text) == []


def test_another_organization_sees_and_reaches_nothing(login_as, org_a, org_b, overdue):
    stranger = login_as("credit_staff", org_b)
    page = stranger.get("/collections/")
    assert page.status_code == 200 and _order(page.text) == []
    assert _contact(stranger, overdue["Ana"]).status_code == 404
    refused = stranger.post(
        "/collections/assign", data={"account_ids": overdue["Ana"], "assignee": "me"}, headers=HTMX
    )
    assert refused.status_code == 422
    for table in TABLES:
        assert _count(org_a, table) == 0 and _count(org_b, table) == 0


def test_the_demo_seed_works_the_overdue_accounts(app, login_as, org_a, overdue):
    with app.app_context():
        from portal.demo.collections import collections_seed

        assert collections_seed(organization_id=org_a.organization_id, seed=7, today=clock.today())
    with factories.scoped(org_a.organization_id):
        states = dict(
            db.session.execute(
                sa.text("SELECT state, count(*) FROM collection_promises GROUP BY state")
            ).all()
        )
    assert states == {"kept": 1, "broken": 1}
    page = login_as("credit_staff").get("/collections/").text
    assert "Promesa incumplida" in page and "Sin asignar</td>" not in page
    assert "Enviar carta" in page  # the dunning levels' first run: one customer has no e-mail
    assert _order(page)[0] == "Ana"  # the second largest overdue got the broken promise
