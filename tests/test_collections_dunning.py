"""Dunning: the organization's levels (an org admin's settings page, audited), the nightly run
that sends each account the highest level reached once — by e-mail, or as a letter to print when
the customer has none — recorded in the contact log, paused below the last level by an open
promise; another organization sees none of it."""

import io
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from portal import clock
from portal.collections.services import DUNNING_SUGGESTIONS, contact_record
from portal.credit.jobs import overdue_mark
from portal.credit.services import usage_charge
from portal.db import organization_scope
from portal.extensions import db
from tests import factories
from tests.test_collections import HTMX, _order

LEVELS = [(1, "Amistoso"), (15, "Firme"), (30, "Suspensión")]


def _level_data(days: int, name: str, **fields) -> dict:
    body = "Estimado(a) {cliente}: debe {monto_vencido} desde el {vencido_desde}. Pague en caja."
    return {
        "days_overdue": str(days),
        "name": name,
        "subject": f"{name}: {{monto_vencido}} · {{organizacion}}",
        "body": body,
    } | fields


def _account_due(org, first_name: str, due_on, *, with_email: bool = True):
    """A customer (with or without e-mail) whose account owes US$120.00 due on `due_on`."""
    fields = {} if with_email else {"email": None}
    customer = factories.customer_create(org.organization_id, first_name=first_name, **fields)
    account = factories.credit_account_create(org.organization_id, customer.customer_id)
    with factories.scoped(org.organization_id):
        usage, _ = usage_charge(
            account_id=account.credit_account_id,
            order_id=uuid.uuid4(),
            amount=Decimal("120.00"),
            actor=org.users["credit_staff"],
        )
        usage.due_date = due_on
        db.session.commit()
    return account.credit_account_id


@pytest.fixture
def levels(login_as):
    admin = login_as("org_admin")
    admin.get("/collections/dunning")
    for days, name in LEVELS:
        saved = admin.post("/collections/dunning", data=_level_data(days, name))
        assert saved.status_code == 303, saved.text
    return admin


def _night(app, org, day) -> dict:
    with clock.pinned(day), app.app_context(), organization_scope(org.organization_id):
        return overdue_mark()["dunning"]


def _sends(org) -> list:
    with factories.scoped(org.organization_id):
        return db.session.execute(
            sa.text(
                "SELECT s.credit_account_id, l.days_overdue AS level, s.sent_on, s.channel,"
                " s.subject, s.body FROM dunning_sends s JOIN dunning_levels l USING (level_id)"
                " ORDER BY s.sent_on, l.days_overdue"
            )
        ).all()


def test_sixty_nights_send_each_level_exactly_once(app, login_as, org_a, levels):
    start = clock.today()
    ana = _account_due(org_a, "Ana", start)
    beto = _account_due(org_a, "Beto", start, with_email=False)
    for night in range(1, 61):
        sent = _night(app, org_a, start + timedelta(days=night))
        expected = 1 if night in (1, 15, 30) else 0
        assert sent == {"email": expected, "letter": expected}, night
    assert _night(app, org_a, start + timedelta(days=60)) == {"email": 0, "letter": 0}
    sends = _sends(org_a)
    for account, channel in ((ana, "email"), (beto, "letter")):
        mine = [
            (send.level, send.sent_on, send.channel)
            for send in sends
            if send.credit_account_id == account
        ]
        assert mine == [(days, start + timedelta(days=days), channel) for days, _ in LEVELS]
    firm = next(send for send in sends if send.credit_account_id == ana and send.level == 15)
    assert firm.subject == "Firme: US$120.00 · Tienda A"
    assert firm.body.startswith("Estimado(a) Ana ") and "US$120.00" in firm.body
    # Each send is a reminder in the account's contact log, by the system.
    log = login_as("credit_staff").get(f"/credit/accounts/{ana}").text
    assert log.count("Correo · Recordatorio enviado") == 3 and "Sistema" in log


def test_a_level_reached_late_sends_only_the_highest(app, org_a, levels):
    start = clock.today()
    account = _account_due(org_a, "Carla", start - timedelta(days=20))
    assert _night(app, org_a, start) == {"email": 1, "letter": 0}
    assert [send.level for send in _sends(org_a) if send.credit_account_id == account] == [15]


def _promise(org, account_id, made, due, amount: str) -> None:
    """A call on day `made` promising `amount` by `due`."""
    with clock.pinned(made), factories.scoped(org.organization_id):
        contact_record(
            account_id=account_id,
            channel="call",
            outcome="promise",
            note=None,
            next_action_on=None,
            promise_amount=Decimal(amount),
            promise_due_on=due,
            actor=org.users["credit_staff"],
        )


def test_an_open_promise_pauses_the_levels_below_the_last(app, login_as, org_a, levels):
    start = clock.today()
    account = _account_due(org_a, "Dora", start)
    _night(app, org_a, start + timedelta(days=1))
    _promise(org_a, account, start + timedelta(days=10), start + timedelta(days=20), "120.00")
    for night in range(2, 21):  # day 15 passes while the promise is open (due on day 20)
        assert _night(app, org_a, start + timedelta(days=night)) == {"email": 0, "letter": 0}
    # Day 21: the promise is broken by the same night's job, the firm reminder goes out.
    assert _night(app, org_a, start + timedelta(days=21)) == {"email": 1, "letter": 0}
    # A new promise covering day 30 does not hold back the last level.
    _promise(org_a, account, start + timedelta(days=25), start + timedelta(days=35), "50.00")
    assert _night(app, org_a, start + timedelta(days=30)) == {"email": 1, "letter": 0}
    levels_sent = [(send.level, send.sent_on) for send in _sends(org_a)]
    assert levels_sent == [
        (1, start + timedelta(days=1)),
        (15, start + timedelta(days=21)),
        (30, start + timedelta(days=30)),
    ]


def test_a_customer_without_email_gets_a_letter_to_print(app, login_as, org_a, levels):
    start = clock.today()
    account = _account_due(org_a, "Elsa", start - timedelta(days=3), with_email=False)
    _night(app, org_a, start)
    client = login_as("credit_staff")
    page = client.get("/collections/").text
    row = page[page.find(f'id="worklist-{account}"') :]
    row = row[: row.find("</tr>")]
    assert "Enviar carta" in row
    href = row[row.find("/collections/letters/") :].split('"')[0]
    letter = client.get(href)
    assert letter.status_code == 200
    assert "Amistoso: US$120.00 · Tienda A" in letter.text and "Estimado(a) Elsa" in letter.text
    assert 'class="no-print"' in letter.text
    pdf = client.get(f"{href}?format=pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = " ".join(
        " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages).split()
    )
    assert "Tienda A" in text and "Estimado(a) Elsa" in text and "US$120.00" in text
    mailed = client.post(f"{href}/mailed")
    assert mailed.status_code == 303
    assert "Enviada el" in client.get(href).text
    page = client.get("/collections/").text
    assert "Enviar carta" not in page and _order(page, names=("Elsa",)) == ["Elsa"]
    entries = factories.audit_entries(org_a.organization_id, account)
    assert [entry.action for entry in entries if entry.action == "collections.letter_mailed"]


def test_levels_page_is_for_org_admins_and_audited(login_as, org_a, levels):
    page = levels.get("/collections/dunning").text
    assert all(name in page for _, name in LEVELS)
    assert login_as("credit_staff").get("/collections/dunning").status_code == 403
    with factories.scoped(org_a.organization_id):
        firm = db.session.scalar(
            sa.text("SELECT level_id FROM dunning_levels WHERE days_overdue = 15")
        )
    edit = levels.get(f"/collections/dunning?level={firm}").text
    assert 'value="Firme"' in edit
    changed = levels.post("/collections/dunning", data=_level_data(20, "Firme", level_id=str(firm)))
    assert changed.status_code == 303
    (entry,) = [
        entry
        for entry in factories.audit_entries(org_a.organization_id, firm)
        if entry.before is not None
    ]
    assert entry.before["days_overdue"] == 15 and entry.after["days_overdue"] == 20
    assert entry.actor_id == org_a.users["org_admin"].staff_user_id


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Hola {nombre}"},
        {"body": "Debe {monto_vencido!r}"},
        {"body": "Debe {monto_vencido:>10}"},
        {"body": "Llave { sin cerrar"},
        {"body": "{cliente.__class__}"},
        {"days_overdue": "0"},
        {"days_overdue": "1"},  # already a level
        {"days_overdue": "pronto"},
        {"name": ""},
        {"body": " \r\n "},
        {"level_id": "no-es-un-id"},
        {"level_id": str(uuid.uuid4())},
    ],
)
def test_bad_levels_are_refused_and_change_nothing(login_as, org_a, levels, fields):
    before = _levels_count(org_a)
    refused = levels.post("/collections/dunning", data=_level_data(40, "Otro") | fields)
    assert refused.status_code == 422, fields
    assert 'id="dunning-form"' in refused.text
    assert _levels_count(org_a) == before


def _levels_count(org) -> int:
    with factories.scoped(org.organization_id):
        return db.session.scalar(sa.text("SELECT count(*) FROM dunning_levels"))


def test_new_level_form_offers_the_next_suggestion(login_as):
    admin = login_as("org_admin")
    page = admin.get("/collections/dunning").text
    assert f'value="{DUNNING_SUGGESTIONS[0][1]}"' in page and "No hay niveles" in page


def test_another_organization_sees_and_reaches_no_dunning(app, login_as, org_a, org_b, levels):
    start = clock.today()
    _account_due(org_a, "Fabio", start - timedelta(days=2), with_email=False)
    _night(app, org_a, start)
    assert len(_sends(org_a)) == 1
    with factories.scoped(org_a.organization_id):
        send_id = db.session.scalar(sa.text("SELECT send_id FROM dunning_sends"))
    stranger = login_as("credit_staff", org_b)
    assert stranger.get(f"/collections/letters/{send_id}").status_code == 404
    assert stranger.post(f"/collections/letters/{send_id}/mailed", headers=HTMX).status_code == 404
    assert "Amistoso" not in login_as("org_admin", org_b).get("/collections/dunning").text
    assert _night(app, org_b, start) == {"email": 0, "letter": 0}
    for table in ("dunning_levels", "dunning_sends"):
        with factories.scoped(org_b.organization_id):
            assert db.session.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 0
