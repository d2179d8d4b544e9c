"""Outbound events: the outbox is written with the change and delivered as signed webhooks to a
real HTTP receiver on 127.0.0.1, retried with backoff, redelivered from the UI, and delivered
once (as a receiver that dedupes by event id sees it) even when a worker dies mid-request."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from portal.credit.services import credit_approve, credit_suspend
from portal.customers.services import customer_update
from portal.events.ingest import verify_signature
from portal.extensions import db
from portal.segments.services import segments_recompute
from portal.webhooks.jobs import webhooks_deliver_due, webhooks_sweep
from portal.webhooks.models import OutboxEvent, WebhookDelivery
from portal.webhooks.services import subscription_create
from tests import factories
from tests.conftest import PROJECT_ROOT

HTMX = {"HX-Request": "true"}


class Receiver:
    """A webhook receiver that checks signatures and applies each event id once."""

    def __init__(self, answers=()):
        self.answers = list(answers)  # statuses to answer first, then 200
        self.secrets: dict[str, str] = {}
        self.requests: list[dict] = []
        self.applied: dict[str, dict] = {}
        self.hang_first = False
        self.first_arrived = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                verify_signature(
                    secret=receiver.secrets[self.headers["X-Key-Id"]],
                    timestamp=self.headers["X-Timestamp"],
                    signature=self.headers["X-Signature"],
                    body=body,
                )
                envelope = json.loads(body)
                assert envelope["event_id"] == self.headers["X-Event-Id"]
                receiver.requests.append(envelope)
                receiver.applied.setdefault(envelope["event_id"], envelope)  # dedupe by id
                if receiver.hang_first and len(receiver.requests) == 1:
                    receiver.first_arrived.set()
                    receiver.release.wait(60)
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def subscribe(self, organization_id, event_types):
        with factories.scoped(organization_id):
            subscription, secret = subscription_create(
                url=self.url, event_types=list(event_types), actor=_admin(organization_id)
            )
            self.secrets[str(subscription.subscription_id)] = secret
            return subscription.subscription_id

    def close(self):
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def receiver():
    receivers = []

    def make(answers=()):
        receivers.append(Receiver(answers))
        return receivers[-1]

    yield make
    for made in receivers:
        made.close()


def _admin(organization_id):
    from portal.auth.models import StaffUser

    return db.session.scalar(
        sa.select(StaffUser).where(sa.literal("org_admin") == sa.any_(StaffUser.roles))
    )


def _deliver(org):
    with factories.scoped(org.organization_id):
        outcome = webhooks_deliver_due()
        db.session.commit()
        return outcome


def _deliveries(org) -> list[WebhookDelivery]:
    with factories.scoped(org.organization_id):
        rows = list(db.session.scalars(sa.select(WebhookDelivery)))
        for row in rows:
            db.session.expunge(row)
        return rows


def _pending_account(org):
    customer = factories.customer_create(org.organization_id)
    return factories.credit_account_create(
        org.organization_id,
        customer.customer_id,
        status="pending",
        credit_limit=Decimal("0"),
        requested_by=org.users["branch_staff"].staff_user_id,
    )


def _approve(org, account):
    from portal.credit.models import CreditRequest

    with factories.scoped(org.organization_id):
        request = db.session.scalar(
            sa.select(CreditRequest).where(
                CreditRequest.credit_account_id == account.credit_account_id
            )
        )
        approver = db.session.merge(org.users["credit_approver"])
        credit_approve(
            request_id=request.credit_request_id,
            approver=approver,
            limit=Decimal("750.00"),
            term_days=None,
            notes="Buen historial",
        )


def test_an_approval_is_delivered_signed_to_the_subscribed_url(app, org_a, receiver):
    hooks = receiver()
    hooks.subscribe(org_a.organization_id, ["customer.credit.approved"])
    account = _pending_account(org_a)
    _approve(org_a, account)
    assert _deliver(org_a) == {"delivered": 1}
    [envelope] = hooks.requests
    assert envelope["event_type"] == "customer.credit.approved"
    assert envelope["organization_id"] == str(org_a.organization_id)
    assert envelope["data"]["credit_limit"] == "750.00"
    assert envelope["data"]["credit_account_id"] == str(account.credit_account_id)
    [delivery] = _deliveries(org_a)
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert _deliver(org_a) == {}  # nothing is sent twice


def test_no_subscription_for_the_type_means_no_delivery(app, org_a, receiver):
    hooks = receiver()
    hooks.subscribe(org_a.organization_id, ["customer.updated"])
    _approve(org_a, _pending_account(org_a))
    assert _deliveries(org_a) == []
    with factories.scoped(org_a.organization_id):  # the event is in the outbox all the same
        assert db.session.scalar(sa.select(OutboxEvent.event_type)) == "customer.credit.approved"


def test_a_refused_change_publishes_nothing(app, org_a, receiver):
    hooks = receiver()
    hooks.subscribe(org_a.organization_id, ["customer.credit.suspended"])
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    from portal.credit.services import CreditError

    with factories.scoped(org_a.organization_id):
        approver = db.session.merge(org_a.users["credit_approver"])
        credit_suspend(account_id=account.credit_account_id, reason="Mora", actor=approver)
        with pytest.raises(CreditError):  # already suspended: refused, rolled back
            credit_suspend(account_id=account.credit_account_id, reason="Otra", actor=approver)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)) == 1


def _backoff_passes(org):
    """Time travel: every pending delivery is due now."""
    with factories.scoped(org.organization_id):
        db.session.execute(sa.update(WebhookDelivery).values(next_attempt_at=sa.func.now()))
        db.session.commit()


def test_failures_are_retried_with_backoff_and_redelivered_from_the_ui(
    app, org_a, receiver, login_as
):
    hooks = receiver(answers=[500, 503])
    hooks.subscribe(org_a.organization_id, ["customer.updated"])
    customer = factories.customer_create(org_a.organization_id)
    with factories.scoped(org_a.organization_id):
        customer_update(
            customer_id=customer.customer_id,
            data={"first_name": "Marta"},
            version_id=customer.version_id,
            actor=db.session.merge(org_a.users["branch_staff"]),
        )
    assert _deliver(org_a) == {"retrying": 1}
    [delivery] = _deliveries(org_a)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert (delivery.next_attempt_at - delivery.created_at).total_seconds() >= 25
    assert _deliver(org_a) == {}  # not due yet
    for expected in ({"retrying": 1}, {"delivered": 1}):
        _backoff_passes(org_a)
        assert _deliver(org_a) == expected
    [delivery] = _deliveries(org_a)
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert len(hooks.requests) == 3 and len(hooks.applied) == 1
    assert hooks.requests[0]["data"]["changed"] == {"first_name": "Marta"}
    admin = login_as("org_admin")
    page = admin.get("/settings/webhooks/")
    assert page.status_code == 200 and "HTTP 503" in page.text
    again = admin.post(
        f"/settings/webhooks/deliveries/{delivery.delivery_id}/redeliver", headers=HTMX
    )
    assert again.status_code == 200 and "reprogramada" in again.text
    assert _deliver(org_a) == {"delivered": 1}
    assert len(hooks.requests) == 4 and len(hooks.applied) == 1  # the receiver dedupes


def test_org_admins_register_receivers_and_see_the_secret_once(login_as, org_a):
    admin = login_as("org_admin")
    admin.get("/settings/webhooks/")
    created = admin.post(
        "/settings/webhooks/",
        {"url": "http://127.0.0.1:9/hooks", "event_types": ["customer.updated"]},
        follow_redirects=True,
    )
    assert created.status_code == 200 and 'id="new-webhook-secret"' in created.text
    assert 'id="new-webhook-secret"' not in admin.get("/settings/webhooks/").text
    refused = admin.post("/settings/webhooks/", {"url": "ftp://x", "event_types": []}, headers=HTMX)
    assert refused.status_code == 422 and "Elija al menos un evento." in refused.text


def test_segment_changes_are_published_set_based(app, org_a, receiver):
    hooks = receiver()
    customers = [factories.customer_create(org_a.organization_id) for _ in range(3)]
    with factories.scoped(org_a.organization_id):
        segments_recompute()  # everyone starts as 'new'
        db.session.commit()
    hooks.subscribe(org_a.organization_id, ["customer.segment_changed"])
    with factories.scoped(org_a.organization_id):
        db.session.execute(
            sa.text(
                "INSERT INTO purchases (organization_id, order_id, customer_id, total,"
                " completed_at, status, event_occurred_at)"
                " SELECT :org, gen_random_uuid(), :customer, 100, now() - interval '400 days',"
                " 'completed', now() FROM generate_series(1, 3)"
            ),
            {"org": org_a.organization_id, "customer": customers[0].customer_id},
        )
        segments_recompute()
        db.session.commit()
    assert _deliver(org_a) == {"delivered": 1}
    [envelope] = hooks.requests
    assert envelope["data"]["customer_id"] == str(customers[0].customer_id)
    assert envelope["data"]["previous_segment"] == "new"


def _worker(services, **extra_env):
    environment = (
        os.environ
        | services.environ()
        | {"PORTAL_ENV": "testing", "LOG_LEVEL": "WARNING"}
        | extra_env
    )
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "worker.py")], env=environment, cwd=PROJECT_ROOT
    )


def _wait_for(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_a_worker_killed_mid_delivery_delivers_once_after_restart(app, services, org_a, receiver):
    hooks = receiver()
    hooks.hang_first = True
    hooks.subscribe(org_a.organization_id, ["customer.updated"])
    customer = factories.customer_create(org_a.organization_id)
    first = _worker(services, WEBHOOK_LEASE_SECONDS="3")
    second = None
    try:
        with factories.scoped(org_a.organization_id):
            customer_update(  # the commit queues the delivery job for the worker
                customer_id=customer.customer_id,
                data={"last_name": "Quintero"},
                version_id=customer.version_id,
                actor=db.session.merge(org_a.users["branch_staff"]),
            )
        assert hooks.first_arrived.wait(60), "the worker never called the receiver"
        first.send_signal(signal.SIGKILL)
        first.wait(20)
        [delivery] = _deliveries(org_a)
        assert (delivery.status, delivery.attempts) == ("pending", 0)
        second = _worker(services, WEBHOOK_LEASE_SECONDS="3")
        time.sleep(3.5)  # the dead worker's lease runs out
        with app.app_context():
            assert webhooks_sweep() == 1
        assert _wait_for(lambda: _deliveries(org_a)[0].status == "delivered")
    finally:
        hooks.release.set()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(20)
    assert len(hooks.requests) == 2  # the request the dead worker made, and the retry
    assert list(hooks.applied) == [str(_deliveries(org_a)[0].event_id)]  # applied once
    assert uuid.UUID(hooks.requests[0]["event_id"]) == _deliveries(org_a)[0].event_id
