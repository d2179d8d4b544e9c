"""Account statements by e-mail: staff send the statement of the period shown on the statement
page (once per form, logged as a contact, audited), the nightly reminders of a level that says so
carry it; the worker renders the PDF when it sends, and the real SMTP sink receives it."""

import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pypdf import PdfReader
from sqlalchemy.exc import IntegrityError

from portal import clock
from portal.extensions import db
from portal.mail import jobs
from portal.mail.services import outbox_add
from tests import factories
from tests.test_collections import HTMX
from tests.test_collections_dunning import _account_due, _level_data, _night
from tests.test_credit_documents import paid  # noqa: F401 (a fixture)
from tests.test_mail_outbox import _caught, _deliver, _outbox

KEY = re.compile(r'name="idempotency_key" type="hidden" value="([^"]+)"')


@pytest.fixture
def marta(paid):  # noqa: F811 (the imported fixture)
    """Marta Quintero's account (`paid` of test_credit_documents: US$150.00 charged, US$120.50
    paid, owes US$29.50), e-mail marta@correo.pa."""
    return paid[1].credit_account_id


def _statement_form(client, account_id, query: str = "") -> dict:
    """The statement page's "Enviar por correo" form, as the page renders it."""
    page = client.get(f"/credit/accounts/{account_id}/statement{query}")
    assert page.status_code == 200 and "Enviar por correo" in page.text
    form = page.text[page.text.index('id="statement-mail-form"') :]
    form = form[: form.index("</form>")]
    fields = dict(re.findall(r'name="(start|end)" type="hidden" value="([^"]*)"', form))
    return fields | {"idempotency_key": KEY.search(form).group(1)}


def _send(client, account_id, form: dict, **kwargs):
    return client.post(f"/collections/accounts/{account_id}/statement", data=form, **kwargs)


def _pdf(message) -> tuple[str, str]:
    """The message's one attachment: its file name and its text (pypdf)."""
    (part,) = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    reader = PdfReader(io.BytesIO(part.get_content()))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    return part.get_filename(), text


def _counts(org) -> dict:
    with factories.scoped(org.organization_id):
        return {
            table: db.session.scalar(sa.text(f"SELECT count(*) FROM {table}"))
            for table in ("email_outbox", "collection_contacts")
        }


def test_staff_email_the_statement_and_the_sink_gets_the_pdf(app, login_as, org_a, marta, sink):
    client = login_as("credit_staff")
    sent = _send(client, marta, _statement_form(client, marta), headers=HTMX)
    assert sent.status_code == 200
    assert "Estado de cuenta de Marta Quintero enviado a marta@correo.pa." in sent.text
    assert 'id="statement-mail-form"' in sent.text  # a fresh form for another period
    (row,) = _outbox(org_a)
    today = clock.today()
    assert (row.statement_start, row.statement_end, row.state) == (None, today, "pending")
    assert "Tienda A" in row.subject and "desde la apertura" in row.subject
    log = client.get(f"/credit/accounts/{marta}").text
    assert "Correo · Estado de cuenta enviado" in log and "marta@correo.pa" in log
    (entry,) = [
        entry
        for entry in factories.audit_entries(org_a.organization_id, marta)
        if entry.action == "collections.statement_sent"
    ]
    assert entry.actor_id == org_a.users["credit_staff"].staff_user_id
    assert entry.after["to_address"] == "marta@correo.pa"

    assert _deliver(app, org_a) == {"sent": 1, "retrying": 0, "failed": 0}
    (message,) = _caught(sink)
    assert message["To"] == "marta@correo.pa" and message["Subject"] == row.subject
    assert "Estimado(a) Marta Quintero" in message.get_body(("plain",)).get_content()
    filename, text = _pdf(message)
    assert filename == f"estado-de-cuenta-{today:%Y-%m}.pdf"
    assert "Estado de cuenta" in text and "Marta Quintero" in text and "Tienda A" in text
    assert "Saldo final" in text and "US$29.50" in text


def test_the_period_shown_is_the_period_sent(app, login_as, org_a, marta, sink):
    client = login_as("credit_approver")  # approvers see statements too, so they may send them
    start = clock.today() - timedelta(days=40)
    form = _statement_form(client, marta, f"?start={start.isoformat()}")
    assert form["start"] == start.isoformat()
    assert _send(client, marta, form, headers=HTMX).status_code == 200
    (row,) = _outbox(org_a)
    assert (row.statement_start, row.statement_end) == (start, clock.today())
    _deliver(app, org_a)
    (message,) = _caught(sink)
    assert "Del " in _pdf(message)[1] and "desde la apertura" not in message["Subject"]


def test_a_customer_without_email_is_refused_and_nothing_changes(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id, first_name="Nora", email=None)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    account_id = account.credit_account_id
    client = login_as("credit_staff")
    form = _statement_form(client, account_id)
    refused = _send(client, account_id, form, headers=HTMX)
    assert refused.status_code == 422
    assert f"{customer.full_name} no tiene correo electrónico registrado" in refused.text
    without_js = _send(client, account_id, form)
    assert without_js.status_code == 303
    assert "no tiene correo" in client.get(without_js.headers["Location"]).text
    assert _counts(org_a) == {"email_outbox": 0, "collection_contacts": 0}
    assert not [
        entry
        for entry in factories.audit_entries(org_a.organization_id, account_id)
        if entry.action == "collections.statement_sent"
    ]


def test_a_double_submit_sends_one_message(app, login_as, org_a, marta, sink):
    client = login_as("credit_staff")
    form = _statement_form(client, marta)
    first = _send(client, marta, form)  # without JavaScript: back to the statement
    assert first.status_code == 303
    assert first.headers["Location"].startswith(f"/credit/accounts/{marta}/statement")
    assert "enviado a marta@correo.pa" in client.get(first.headers["Location"]).text
    again = _send(client, marta, form, headers=HTMX)
    assert again.status_code == 200 and "ya se había enviado a marta@correo.pa" in again.text
    assert _counts(org_a) == {"email_outbox": 1, "collection_contacts": 1}
    _deliver(app, org_a)
    assert len(_caught(sink)) == 1


def test_a_form_without_its_key_or_with_a_future_end_is_refused(login_as, org_a, marta):
    client = login_as("credit_staff")
    form = _statement_form(client, marta)
    assert (
        _send(client, marta, form | {"idempotency_key": "otra-vez"}, headers=HTMX).status_code
        == 422
    )
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()
    future = _send(client, marta, form | {"end": tomorrow}, headers=HTMX)
    assert future.status_code == 422 and "no puede terminar después de hoy" in future.text
    assert _counts(org_a)["email_outbox"] == 0


def test_another_organizations_account_is_not_found(login_as, org_a, org_b, marta):
    client = login_as("credit_staff")
    form = _statement_form(client, marta)
    outsider = login_as("credit_staff", org_b)
    outsider.get("/")
    assert _send(outsider, marta, form, headers=HTMX).status_code == 404
    branch = login_as("branch_staff")  # the statement page is not theirs: neither is sending it
    branch.get("/")
    assert _send(branch, marta, form, headers=HTMX).status_code == 403
    assert _counts(org_a) == {"email_outbox": 0, "collection_contacts": 0}


def test_a_statement_needs_an_end_and_an_account(org_a):
    message = {"to_address": "x@correo.pa", "subject": "Estado", "body": "Adjunto."}
    for bad in (
        {"statement_start": clock.today()},
        {"statement_start": clock.today(), "statement_end": clock.today() - timedelta(days=1)},
        {"statement_end": clock.today()},  # no account
    ):
        with factories.scoped(org_a.organization_id), pytest.raises(IntegrityError):
            outbox_add(messages=[message | bad])


@pytest.fixture
def levels(login_as):
    """A first reminder without the statement, a firm one with it."""
    admin = login_as("org_admin")
    admin.get("/collections/dunning")
    for days, name, attach in ((1, "Amistoso", {}), (15, "Firme", {"attach_statement": "y"})):
        saved = admin.post("/collections/dunning", data=_level_data(days, name, **attach))
        assert saved.status_code == 303, saved.text
    return admin


def test_the_levels_page_lists_and_audits_the_attachment(org_a, levels):
    page = levels.get("/collections/dunning").text
    rows = page[page.index('id="dunning-levels"') : page.index("</table>")]
    assert rows.count("Adjunto") == 1
    with factories.scoped(org_a.organization_id):
        firm = db.session.scalar(
            sa.text("SELECT level_id FROM dunning_levels WHERE attach_statement")
        )
    assert 'checked id="attach_statement"' in levels.get(f"/collections/dunning?level={firm}").text
    levels.post("/collections/dunning", data=_level_data(15, "Firme", level_id=str(firm)))
    entries = factories.audit_entries(org_a.organization_id, firm)
    assert [(entry.before or {}).get("attach_statement") for entry in entries] == [None, True]
    assert [entry.after["attach_statement"] for entry in entries] == [True, False]


def test_a_level_that_attaches_the_statement_sends_the_pdf(app, org_a, levels, sink):
    start = clock.today()
    _account_due(org_a, "Ana", start)
    for night in (1, 15):
        day = start + timedelta(days=night)
        _night(app, org_a, day)
        with clock.pinned(day):
            assert _deliver(app, org_a)["sent"] == 1
    plain, firm = _outbox(org_a)
    assert (plain.statement_start, plain.statement_end) == (None, None)
    day = start + timedelta(days=15)
    # From the first day of the month three months before the send day, to the send day.
    assert firm.statement_end == day and firm.statement_start.day == 1
    months = (day.year - firm.statement_start.year) * 12 + day.month - firm.statement_start.month
    assert months == 3
    friendly, reminder = sorted(_caught(sink), key=lambda message: message["Subject"])
    assert friendly["Subject"].startswith("Amistoso") and not list(friendly.iter_attachments())
    filename, text = _pdf(reminder)
    assert (
        reminder["Subject"].startswith("Firme") and filename == f"estado-de-cuenta-{day:%Y-%m}.pdf"
    )
    assert "Ana" in text and "US$120.00" in text and "Saldo final" in text


def test_a_statement_that_cannot_be_rendered_is_retried_and_others_still_go(
    app, login_as, org_a, marta, levels, sink, monkeypatch
):
    client = login_as("credit_staff")
    _send(client, marta, _statement_form(client, marta), headers=HTMX)
    _account_due(org_a, "Ana", clock.today() - timedelta(days=2))
    _night(app, org_a, clock.today())  # a plain first reminder

    def broken(*args, **kwargs):
        raise RuntimeError("sin fuentes")

    monkeypatch.setattr(jobs, "statement_pdf", broken)
    assert _deliver(app, org_a) == {"sent": 1, "retrying": 1, "failed": 0}
    statement = next(row for row in _outbox(org_a) if row.statement_end is not None)
    assert statement.state == "pending" and statement.data_started_at is None
    assert "sin fuentes" in statement.last_error
    monkeypatch.undo()
    with factories.scoped(org_a.organization_id):
        db.session.execute(sa.text("UPDATE email_outbox SET next_attempt_at = now()"))
        db.session.commit()
    assert _deliver(app, org_a) == {"sent": 1, "retrying": 0, "failed": 0}
    assert len(_caught(sink)) == 2
