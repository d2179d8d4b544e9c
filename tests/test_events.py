"""Event ingestion and processing: signatures, envelopes, inbox idempotency, tiers, orders."""

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from rq import SimpleWorker

from portal.events.ingest import signature_for
from portal.events.jobs import _APPLY_TIERS
from portal.events.models import InboxEvent, Purchase
from portal.extensions import db
from portal.tasks import queue
from tests import factories

SECRET = "test-events-secret"


def _post(client, body, *, timestamp=None, secret=SECRET, signature=None, headers=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    sent = {"X-Timestamp": stamp, "X-Signature": signature or signature_for(secret, stamp, raw)}
    return client.http.post(
        "/api/events", data=raw, headers=sent | (headers or {}), content_type="application/json"
    )


def _event(org, event_type="pricing.loyalty.tier_changed", occurred=None, **data):
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": (occurred or datetime.now(UTC)).isoformat(),
        "organization_id": str(org.organization_id),
        "data": data,
    }


def _work(app):
    with app.app_context():
        portal_queue = queue()
        SimpleWorker([portal_queue], connection=portal_queue.connection).work(
            burst=True, logging_level=logging.WARNING
        )


def _inbox(org) -> dict:
    with factories.scoped(org.organization_id):
        return {
            row.event_id: (row.status, row.last_error)
            for row in db.session.scalars(sa.select(InboxEvent))
        }


@pytest.fixture
def customer(org_a):
    return factories.customer_create(org_a.organization_id, loyalty_tier="bronze")


def test_a_signed_event_is_accepted_stored_and_applied(app, client, org_a, customer):
    event = _event(org_a, customer_id=str(customer.customer_id), old_tier="bronze", new_tier="gold")
    response = _post(client, event)
    assert response.status_code == 202
    assert response.json == {"results": [{"event_id": event["event_id"], "status": "accepted"}]}
    assert _inbox(org_a)[uuid.UUID(event["event_id"])][0] == "received"
    _work(app)
    assert _inbox(org_a)[uuid.UUID(event["event_id"])] == ("processed", None)
    assert (
        factories.customer_row(org_a.organization_id, customer.customer_id).loyalty_tier == "gold"
    )


def test_redelivery_is_a_duplicate_and_a_reused_id_with_other_content_is_409(
    app, client, org_a, customer
):
    event = _event(org_a, customer_id=str(customer.customer_id), new_tier="silver")
    assert _post(client, event).status_code == 202
    again = _post(client, event)
    assert again.status_code == 202 and again.json["results"][0]["status"] == "duplicate"
    changed = dict(event, data={"customer_id": str(customer.customer_id), "new_tier": "platinum"})
    conflict = _post(client, changed)
    assert conflict.status_code == 409 and "otro contenido" in conflict.json["error"]
    assert len(_inbox(org_a)) == 1


def test_older_tier_events_are_ignored_out_of_order(app, client, org_a, customer):
    now = datetime.now(UTC) - timedelta(hours=3)  # occurred_at may not lie in the future
    newer = _event(org_a, occurred=now, customer_id=str(customer.customer_id), new_tier="platinum")
    older = _event(
        org_a,
        occurred=now - timedelta(hours=1),
        customer_id=str(customer.customer_id),
        new_tier="silver",
    )
    _post(client, newer)
    _work(app)
    _post(client, older)
    _work(app)
    assert (
        factories.customer_row(org_a.organization_id, customer.customer_id).loyalty_tier
        == "platinum"
    )
    both_in_one_batch = [
        _event(
            org_a,
            occurred=now + timedelta(hours=2),
            customer_id=str(customer.customer_id),
            new_tier="gold",
        ),
        _event(
            org_a,
            occurred=now + timedelta(hours=1),
            customer_id=str(customer.customer_id),
            new_tier="bronze",
        ),
    ]
    _post(client, both_in_one_batch)
    _work(app)
    assert (
        factories.customer_row(org_a.organization_id, customer.customer_id).loyalty_tier == "gold"
    )


def test_bad_payloads_become_dead_letters_with_reasons_and_apply_nothing(
    app, client, org_a, org_b, customer
):
    theirs = factories.customer_create(org_b.organization_id, loyalty_tier="bronze")
    events = [
        _event(org_a, customer_id=str(uuid.uuid4()), new_tier="gold"),
        _event(org_a, customer_id=str(customer.customer_id), new_tier="diamond"),
        _event(org_a, customer_id="no-uuid", new_tier="gold"),
        _event(
            org_a, customer_id=str(theirs.customer_id), new_tier="gold"
        ),  # another org's customer
        _event(
            org_a,
            "orders.order.completed",
            customer_id=str(customer.customer_id),
            order_id=str(uuid.uuid4()),
            total="NaN",
            completed_at=datetime.now(UTC).isoformat(),
        ),
    ]
    assert _post(client, events).status_code == 202
    _work(app)
    reasons = sorted(reason for status, reason in _inbox(org_a).values() if status == "dead")
    assert reasons == sorted(
        [
            "cliente desconocido en esta organización",
            "nivel desconocido: diamond",
            "customer_id falta o no es un UUID",
            "cliente desconocido en esta organización",
            "total inválido",
        ]
    )
    assert (
        factories.customer_row(org_a.organization_id, customer.customer_id).loyalty_tier == "bronze"
    )
    assert (
        factories.customer_row(org_b.organization_id, theirs.customer_id).loyalty_tier == "bronze"
    )


def test_admin_retries_dead_letters_from_the_inbox_page(app, client, login_as, org_a, customer):
    event = _event(org_a, customer_id=str(customer.customer_id), new_tier="diamond")
    _post(client, event)
    _work(app)
    admin = login_as("org_admin")
    page = admin.get("/events/?status=dead").text
    assert "nivel desconocido: diamond" in page and event["event_id"] in page
    with factories.scoped(org_a.organization_id):  # the cause gets fixed (e.g. a new tier mapping)
        db.session.execute(
            sa.update(InboxEvent).values(
                payload=dict(
                    event, data={"customer_id": str(customer.customer_id), "new_tier": "gold"}
                )
            )
        )
        db.session.commit()
    assert admin.post("/events/retry", {"event_id": event["event_id"]}).status_code == 303
    _work(app)
    assert _inbox(org_a)[uuid.UUID(event["event_id"])] == ("processed", None)
    assert (
        factories.customer_row(org_a.organization_id, customer.customer_id).loyalty_tier == "gold"
    )
    assert login_as("credit_staff").get("/events/").status_code == 403


def test_order_events_maintain_purchases_and_last_purchase(app, client, org_a, customer):
    order = str(uuid.uuid4())
    day = datetime(2026, 11, 1, 15, 0, tzinfo=UTC)
    completed = _event(
        org_a,
        "orders.order.completed",
        occurred=day,
        customer_id=str(customer.customer_id),
        order_id=order,
        total="125.50",
        completed_at=day.isoformat(),
    )
    _post(client, completed)
    _post(client, dict(completed, event_id=str(uuid.uuid4())))  # the same order again, new event id
    _work(app)
    with factories.scoped(org_a.organization_id):
        (purchase,) = db.session.scalars(sa.select(Purchase))
        assert purchase.status == "completed" and str(purchase.total) == "125.50"
    assert (
        factories.customer_row(org_a.organization_id, customer.customer_id).last_purchase_at == day
    )
    cancelled = _event(
        org_a,
        "orders.order.cancelled",
        occurred=day + timedelta(hours=1),
        customer_id=str(customer.customer_id),
        order_id=order,
        total="125.50",
        completed_at=day.isoformat(),
    )
    _post(client, cancelled)
    _work(app)
    assert (
        factories.customer_row(org_a.organization_id, customer.customer_id).last_purchase_at is None
    )


def test_order_events_carry_the_order_number_into_purchases(app, client, org_a, customer):
    day = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    data = {
        "customer_id": str(customer.customer_id),
        "total": "80.00",
        "completed_at": day.isoformat(),
    }
    numbered = _event(
        org_a,
        "orders.order.completed",
        occurred=day,
        order_id=str(uuid.uuid4()),
        order_number="F-0012345",
        **data,
    )
    bad = _event(
        org_a,
        "orders.order.completed",
        occurred=day,
        order_id=str(uuid.uuid4()),
        order_number="F 0012345; DROP",
        **data,
    )
    for event in (numbered, bad):
        _post(client, event)
    _work(app)
    with factories.scoped(org_a.organization_id):
        (purchase,) = db.session.scalars(sa.select(Purchase))
        assert purchase.order_number == "F-0012345"
    assert _inbox(org_a)[uuid.UUID(bad["event_id"])] == ("dead", "order_number inválido")


@pytest.mark.parametrize(
    "change, status, message",
    [
        ({"headers": {"X-Signature": ""}}, 401, "Faltan las cabeceras"),
        ({"signature": "sha256=" + "0" * 64}, 401, "Firma inválida"),
        ({"secret": "otro-secreto"}, 401, "Firma inválida"),
        ({"timestamp": -400}, 401, "vencida"),
        ({"timestamp": +400}, 401, "vencida"),
        ({"timestamp": "ayer"}, 401, "segundos Unix"),
    ],
)
def test_unsigned_bad_or_stale_requests_are_refused(
    client, org_a, customer, change, status, message
):
    event = _event(org_a, customer_id=str(customer.customer_id), new_tier="gold")
    headers = change.pop("headers", None)
    if isinstance(change.get("timestamp"), int):  # an offset from now, in seconds
        change["timestamp"] = int(time.time()) + change["timestamp"]
    response = (
        _post(client, event, headers=headers, **change)
        if not headers
        else client.http.post(
            "/api/events",
            data=json.dumps(event),
            headers={"X-Timestamp": str(int(time.time()))},
            content_type="application/json",
        )
    )
    assert response.status_code == status and message in response.json["error"]
    assert _inbox(org_a) == {}


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"{not json", 400, "JSON mal formado"),
        (b"\xff\xfe{}", 400, "UTF-8"),
        (b'{"event_id": "a", "event_id": "b"}', 400, "claves duplicadas"),
        (b"[" * 5000 + b"]" * 5000, 400, "anidado"),
        (b'{"a": NaN}', 400, "no permitido"),
        (b"[]", 400, "vacío"),
        (b"x" * (11 * 1024 * 1024), 413, ""),
    ],
)
def test_malformed_bodies_are_refused(client, org_a, body, status, message):
    response = _post(client, body)
    assert response.status_code == status
    assert message in response.json["error"]
    assert _inbox(org_a) == {}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("event_id", None, "event_id"),
        ("event_id", "123", "UUID"),
        ("event_type", "pricing.points.earned", "desconocido"),
        ("occurred_at", "ayer", "ISO 8601"),
        ("occurred_at", "2026-11-01T10:00:00", "zona horaria"),
        ("organization_id", 42, "organization_id"),
        ("data", "texto", "data"),
    ],
)
def test_bad_envelopes_refuse_the_whole_batch(client, org_a, customer, field, value, message):
    good = _event(org_a, customer_id=str(customer.customer_id), new_tier="gold")
    bad = _event(org_a, customer_id=str(customer.customer_id), new_tier="gold")
    if value is None:
        bad.pop(field)
    else:
        bad[field] = value
    response = _post(client, [good, bad])
    assert response.status_code == 400 and message in response.json["error"]
    assert _inbox(org_a) == {}


def test_unknown_organization_is_refused(client, org_a):
    event = _event(org_a, customer_id=str(uuid.uuid4()), new_tier="gold")
    event["organization_id"] = str(uuid.uuid4())
    response = _post(client, event)
    assert response.status_code == 422 and "Organización desconocida" in response.json["error"]


def test_batches_over_a_thousand_are_refused(client, org_a):
    events = [_event(org_a, customer_id=str(uuid.uuid4()), new_tier="gold") for _ in range(1001)]
    assert _post(client, events).status_code == 413


def test_events_for_two_organizations_stay_in_their_own(app, client, org_a, org_b):
    mine = factories.customer_create(org_a.organization_id, loyalty_tier="bronze")
    theirs = factories.customer_create(org_b.organization_id, loyalty_tier="bronze")
    _post(
        client,
        [
            _event(org_a, customer_id=str(mine.customer_id), new_tier="gold"),
            _event(org_b, customer_id=str(theirs.customer_id), new_tier="silver"),
        ],
    )
    _work(app)
    assert factories.customer_row(org_a.organization_id, mine.customer_id).loyalty_tier == "gold"
    assert (
        factories.customer_row(org_b.organization_id, theirs.customer_id).loyalty_tier == "silver"
    )
    assert len(_inbox(org_a)) == 1 and len(_inbox(org_b)) == 1


def test_order_events_schedule_one_debounced_segment_recompute(app, client, org_a, customer):
    from rq.registry import ScheduledJobRegistry

    for _ in range(3):
        _post(
            client,
            _event(
                org_a,
                "orders.order.completed",
                customer_id=str(customer.customer_id),
                order_id=str(uuid.uuid4()),
                total="10.00",
                completed_at=datetime.now(UTC).isoformat(),
            ),
        )
        _work(app)
    with app.app_context():
        scheduled = ScheduledJobRegistry(queue=queue()).get_job_ids()
        jobs = [queue().fetch_job(job_id) for job_id in scheduled]
    assert [job.args[:2] for job in jobs] == [
        ("portal.segments.jobs:segments_recompute_job", str(org_a.organization_id))
    ]


def test_a_tier_change_is_not_recent_activity_and_updates_the_row_in_place(
    app, client, org_a, customer
):
    before = factories.customer_row(org_a.organization_id, customer.customer_id)
    event = _event(org_a, customer_id=str(customer.customer_id), new_tier="platinum")
    assert _post(client, event).status_code == 202
    _work(app)
    after = factories.customer_row(org_a.organization_id, customer.customer_id)
    assert after.loyalty_tier == "platinum"
    assert (after.updated_at, after.activity_at) == (before.updated_at, before.activity_at)
    # HOT: no indexed column changes and the page has room, so no index gets a new entry.
    counters = sa.text(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'customers'"
    )
    with factories.scoped(org_a.organization_id):
        before = db.session.execute(counters).one()
        db.session.execute(
            _APPLY_TIERS,
            {"customers": [customer.customer_id], "tiers": ["gold"], "times": [datetime.now(UTC)]},
        )
        after = db.session.execute(counters).one()
    assert (after.n_tup_upd - before.n_tup_upd, after.n_tup_hot_upd - before.n_tup_hot_upd) == (
        1,
        1,
    )
