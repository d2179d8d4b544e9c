"""Nothing is lost: Redis down at ingest, a worker killed with SIGKILL mid-batch."""

import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from portal.customers.models import Customer
from portal.events.jobs import inbox_sweep
from portal.events.models import InboxEvent, Purchase
from portal.extensions import db
from portal.seed import customer_rows, customers_bulk_load
from portal.tasks import run_scoped
from tests import factories
from tests.test_events import _event, _post, _work


def _statuses(org) -> dict:
    with factories.scoped(org.organization_id):
        return dict(
            db.session.execute(
                sa.select(InboxEvent.status, sa.func.count()).group_by(InboxEvent.status)
            ).all()
        )


def test_events_accepted_while_redis_is_down_are_processed_when_it_returns(
    app, client, org_a, monkeypatch
):
    customer = factories.customer_create(org_a.organization_id, loyalty_tier="bronze")
    dead_redis = Redis(port=1, retry=Retry(NoBackoff(), 0))
    with monkeypatch.context() as patch:
        patch.setitem(app.extensions, "portal_redis", dead_redis)
        response = _post(
            client, _event(org_a, customer_id=str(customer.customer_id), new_tier="gold")
        )
    assert response.status_code == 202  # durable in PostgreSQL even though it could not be queued
    assert _statuses(org_a) == {"received": 1}
    with app.app_context():
        assert inbox_sweep(older_than_seconds=0) == 1
    _work(app)
    assert _statuses(org_a) == {"processed": 1}
    assert (
        factories.customer_row(org_a.organization_id, customer.customer_id).loyalty_tier == "gold"
    )


def test_a_worker_killed_mid_batch_loses_nothing_and_applies_nothing_twice(
    app, client, org_a, worker_process
):
    worker_process.send_signal(signal.SIGSTOP)  # hold the worker until the batch is queued
    with app.app_context():
        customers_bulk_load(org_a.organization_id, customer_rows(1000, start=70_000))
    with factories.scoped(org_a.organization_id):
        ids = list(db.session.scalars(sa.select(Customer.customer_id)))
    start = datetime.now(UTC) - timedelta(minutes=20)  # + n seconds stays in the past
    events = [
        _event(
            org_a,
            occurred=start + timedelta(seconds=n),
            customer_id=str(customer_id),
            new_tier=["silver", "gold", "platinum"][n % 3],
        )
        for n, customer_id in enumerate(ids)
    ]
    assert _post(client, events).status_code == 202
    worker_process.send_signal(signal.SIGCONT)
    time.sleep(0.3)  # let it pick up the batch and start applying it
    worker_process.send_signal(signal.SIGKILL)
    worker_process.wait(10)
    # Whatever moment it died at, the batch is all-or-nothing; sweeper and new worker finish it.
    with app.app_context():
        inbox_sweep(older_than_seconds=0)
    _work(app)
    assert _statuses(org_a) == {"processed": len(events)}
    expected = {uuid.UUID(e["data"]["customer_id"]): e["data"]["new_tier"] for e in events}
    with factories.scoped(org_a.organization_id):
        tiers = dict(
            db.session.execute(sa.select(Customer.customer_id, Customer.loyalty_tier)).all()
        )
        attempts = set(db.session.scalars(sa.select(InboxEvent.attempts)))
    assert tiers == expected
    assert attempts == {1}  # each event was applied by exactly one committed transaction


def test_four_workers_racing_for_the_same_batches_apply_each_event_once(app, client, org_a):
    with app.app_context():
        customers_bulk_load(org_a.organization_id, customer_rows(400, start=80_000))
    with factories.scoped(org_a.organization_id):
        ids = list(db.session.scalars(sa.select(Customer.customer_id)))
    start = datetime.now(UTC) - timedelta(minutes=20)
    tiers = [
        _event(org_a, occurred=start + timedelta(seconds=n), customer_id=str(c), new_tier="gold")
        for n, c in enumerate(ids)
    ]
    orders = [
        _event(
            org_a,
            "orders.order.completed",
            occurred=start,
            customer_id=str(c),
            order_id=str(uuid.uuid4()),
            total="10.00",
            completed_at=start.isoformat(),
        )
        for c in ids
    ]
    assert _post(client, tiers + orders).status_code == 202  # queued, but no worker runs yet
    batches = [[e["event_id"] for e in (tiers + orders)[n : n + 200]] for n in range(0, 800, 200)]
    barrier = threading.Barrier(4)

    def worker():
        barrier.wait()
        with app.app_context():
            for batch in batches:  # every worker tries every batch, at the same moment
                run_scoped(
                    "portal.events.jobs:process_events",
                    str(org_a.organization_id),
                    {"event_ids": batch},
                )

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert _statuses(org_a) == {"processed": 800}
    with factories.scoped(org_a.organization_id):
        assert set(db.session.scalars(sa.select(InboxEvent.attempts))) == {1}
        assert set(db.session.scalars(sa.select(Customer.loyalty_tier))) == {"gold"}
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Purchase)) == 400
