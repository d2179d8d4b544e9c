"""E-mail for real: the dunning run writes its e-mails to the outbox in the same transaction, the
worker delivers them to a real SMTP server on 127.0.0.1 (aiosmtpd), retries with backoff, shows
a permanent failure on the account, and never sends a message twice, even when killed mid-send."""

import asyncio
import multiprocessing
import os
import signal
import threading
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from portal import clock
from portal.db import organization_scope
from portal.extensions import db
from portal.mail.jobs import outbox_deliver_due, outbox_sweep
from portal.mail.sink import sink_messages, sink_start
from tests import factories
from tests.test_collections_dunning import LEVELS, _account_due, _level_data, _night


def _caught(directory) -> list:
    return sink_messages(directory)


class Gate:
    """An SMTP handler that records what it accepts, refuses recipients, or holds a step open
    until released (to kill the client there)."""

    def __init__(self, *, hold: str | None = None, refuse: str | None = None):
        self.hold, self.refuse = hold, refuse
        self.messages: list[bytes] = []
        self.reached, self.release = threading.Event(), threading.Event()

    async def _held(self, step: str) -> None:
        if self.hold == step:
            self.reached.set()
            for _ in range(400):
                if self.release.is_set():
                    return
                await asyncio.sleep(0.05)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return self.refuse
        await self._held("rcpt")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content)
        await self._held("data")
        return "250 Message accepted for delivery"


@pytest.fixture
def gate(smtp_url):
    """A Gate server on SMTP_URL (configure it before the first connection)."""
    handler = Gate()
    server = Controller(handler, hostname="127.0.0.1", port=int(smtp_url.rsplit(":", 1)[1]))
    server.start()
    yield handler
    handler.release.set()
    server.stop()


@pytest.fixture
def levels_set(login_as):
    admin = login_as("org_admin")
    admin.get("/collections/dunning")
    for days, name in LEVELS:
        assert admin.post("/collections/dunning", data=_level_data(days, name)).status_code == 303


def _reminded(app, org):
    """Ana, two days late, gets tonight's first reminder (in the outbox); her account id."""
    account = _account_due(org, "Ana", clock.today() - timedelta(days=2))
    _night(app, org, clock.today())
    return account


def _deliver(app, org) -> dict:
    with app.app_context(), organization_scope(org.organization_id):
        return outbox_deliver_due()


def _outbox(org) -> list:
    with factories.scoped(org.organization_id):
        return db.session.execute(
            sa.text("SELECT * FROM email_outbox ORDER BY created_at, outbox_id")
        ).all()


def _due_now(org) -> None:
    """Time passes: every retry is due."""
    with factories.scoped(org.organization_id):
        db.session.execute(sa.text("UPDATE email_outbox SET next_attempt_at = now()"))
        db.session.commit()


def test_sixty_nights_mail_each_level_exactly_once(app, org_a, levels_set, sink):
    start = clock.today()
    _account_due(org_a, "Ana", start)
    _account_due(org_a, "Beto", start, with_email=False)  # letters: no e-mail at all
    for night in range(1, 61):
        _night(app, org_a, start + timedelta(days=night))
        _deliver(app, org_a)
    caught = _caught(sink)
    assert len(caught) == 3
    assert sorted(message["Subject"] for message in caught) == sorted(
        f"{name}: US$120.00 · Tienda A" for _, name in LEVELS
    )
    rows = _outbox(org_a)
    assert [row.state for row in rows] == ["sent"] * 3
    assert {message["Message-ID"] for message in caught} == {
        f"<{row.outbox_id}@portal.localhost>" for row in rows
    }
    assert all(message["To"].startswith("cliente") for message in caught)


def test_the_outbox_row_is_written_with_the_decision(app, org_a, levels_set, smtp_url):
    account = _reminded(app, org_a)
    (row,) = _outbox(org_a)
    with factories.scoped(org_a.organization_id):
        send = db.session.execute(sa.text("SELECT * FROM dunning_sends")).one()
    assert row.send_id == send.send_id and row.credit_account_id == account
    assert row.state == "pending" and row.subject == send.subject and row.body == send.body


def test_a_server_down_is_retried_with_backoff(
    app, login_as, org_a, levels_set, smtp_url, tmp_path
):
    account = _reminded(app, org_a)
    assert _deliver(app, org_a) == {"sent": 0, "retrying": 1, "failed": 0}
    (row,) = _outbox(org_a)
    assert row.state == "pending" and row.attempts == 1 and row.last_error
    assert row.next_attempt_at > row.claimed_at  # backed off
    assert _deliver(app, org_a) == {"sent": 0, "retrying": 0, "failed": 0}  # not due yet
    page = login_as("credit_staff").get(f"/credit/accounts/{account}").text
    assert "Correo: Pendiente" in page
    server = sink_start(tmp_path / "mail", int(smtp_url.rsplit(":", 1)[1]))
    try:
        _due_now(org_a)
        assert _deliver(app, org_a) == {"sent": 1, "retrying": 0, "failed": 0}
        assert _deliver(app, org_a) == {"sent": 0, "retrying": 0, "failed": 0}
    finally:
        server.stop()
    assert len(_caught(tmp_path / "mail")) == 1
    assert "Correo: Enviado" in login_as("credit_staff").get(f"/credit/accounts/{account}").text


def test_a_permanent_refusal_fails_at_once_and_shows_on_the_account(
    app, login_as, org_a, levels_set, gate
):
    gate.refuse = "550 5.1.1 Buzón inexistente"
    account = _reminded(app, org_a)
    assert _deliver(app, org_a) == {"sent": 0, "retrying": 0, "failed": 1}
    (row,) = _outbox(org_a)
    assert row.state == "failed" and row.attempts == 1 and "550" in row.last_error
    _due_now(org_a)
    assert _deliver(app, org_a) == {"sent": 0, "retrying": 0, "failed": 0}
    page = login_as("credit_staff").get(f"/credit/accounts/{account}").text
    assert "Correo: No entregado" in page and "Buzón inexistente" in page
    assert gate.messages == []


def _killed_mid_send(app, org, gate) -> None:
    """A worker process delivers; it is killed (SIGKILL) while the server holds its step."""

    def worker():
        with app.app_context():
            db.engine.dispose(close=False)  # the parent's connections are not this process's
            db.session.registry.clear()
            with organization_scope(org.organization_id):
                outbox_deliver_due()

    process = multiprocessing.get_context("fork").Process(target=worker)
    process.start()
    try:
        assert gate.reached.wait(30), "the worker never reached the held step"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)
        gate.release.set()


def test_a_worker_killed_after_handing_over_never_sends_twice(
    app, login_as, org_a, levels_set, gate
):
    gate.hold = "data"
    account = _reminded(app, org_a)
    _killed_mid_send(app, org_a, gate)
    (row,) = _outbox(org_a)
    assert row.state == "sending" and row.data_started_at is not None
    assert _deliver(app, org_a) == {"sent": 0, "retrying": 0, "failed": 0}  # lease still held
    app.config["EMAIL_LEASE_SECONDS"] = 0  # the lease has passed
    assert _deliver(app, org_a) == {"sent": 0, "retrying": 0, "failed": 1}
    _due_now(org_a)
    assert _deliver(app, org_a) == {"sent": 0, "retrying": 0, "failed": 0}
    assert len(gate.messages) == 1
    (row,) = _outbox(org_a)
    assert row.state == "failed" and row.attempts == 1
    page = login_as("credit_staff").get(f"/credit/accounts/{account}").text
    assert "Correo: No entregado" in page and "puede haber llegado" in page


def test_a_worker_killed_before_handing_over_is_retried_once(app, org_a, levels_set, gate):
    gate.hold = "rcpt"
    _reminded(app, org_a)
    _killed_mid_send(app, org_a, gate)
    (row,) = _outbox(org_a)
    assert row.state == "sending" and row.data_started_at is None
    gate.hold = None
    app.config["EMAIL_LEASE_SECONDS"] = 0
    assert _deliver(app, org_a) == {"sent": 1, "retrying": 0, "failed": 0}
    assert _deliver(app, org_a) == {"sent": 0, "retrying": 0, "failed": 0}
    assert len(gate.messages) == 1
    (row,) = _outbox(org_a)
    assert row.state == "sent" and row.attempts == 2


def test_dev_mail_shows_the_sink_in_development_only(app, login_as, org_a, levels_set, sink):
    _reminded(app, org_a)
    _deliver(app, org_a)
    client = login_as("credit_staff")
    assert client.get("/dev/mail/").status_code == 404  # testing (and production): no page
    app.config.update(ENV_NAME="development", DEV_MAIL_DIR=str(sink))
    page = client.get("/dev/mail/")
    assert page.status_code == 200
    assert "Amistoso: US$120.00 · Tienda A" in page.text and "Estimado(a) Ana" in page.text


def test_another_organization_delivers_none_of_it(app, org_a, org_b, levels_set, sink):
    _reminded(app, org_a)
    assert _deliver(app, org_b) == {"sent": 0, "retrying": 0, "failed": 0}
    assert _outbox(org_b) == [] and len(_outbox(org_a)) == 1
    assert _caught(sink) == []
    assert uuid.UUID(str(_outbox(org_a)[0].organization_id)) == org_a.organization_id


def test_the_sweeper_finds_organizations_with_mail_due(app, org_a, org_b, levels_set, sink):
    with app.app_context():
        assert outbox_sweep() == 0
    _reminded(app, org_a)
    with app.app_context():
        assert outbox_sweep() == 1  # org A only: its delivery job is queued
    _deliver(app, org_a)
    with app.app_context():
        assert outbox_sweep() == 0
    assert len(_caught(sink)) == 1
