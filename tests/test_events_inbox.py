"""The events inbox for people: Spanish types and states, data as fields, customer links,
filters by type, state and date."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from portal import clock
from portal.extensions import db
from tests import factories


def _inbox_event(org, event_type, data, *, status="processed", days_ago=0, error=None):
    event_id = uuid.uuid4()
    payload = {"event_id": str(event_id), "event_type": event_type, "data": data}
    with factories.scoped(org.organization_id):
        db.session.execute(
            sa.text(
                "INSERT INTO event_inbox (organization_id, event_id, event_type, occurred_at,"
                " payload, payload_hash, status, last_error) VALUES (:org, :id, :type, :at,"
                " CAST(:payload AS jsonb), repeat('a', 64), :status, :error)"
            ),
            {
                "org": org.organization_id,
                "id": event_id,
                "type": event_type,
                "at": datetime.now(UTC) - timedelta(days=days_ago),
                "payload": json.dumps(payload),
                "status": status,
                "error": error,
            },
        )
        db.session.commit()
    return event_id


@pytest.fixture
def inbox(org_a):
    customer = factories.customer_create(
        org_a.organization_id, first_name="Irene", last_name="Rodríguez"
    )
    ids = {
        "tier": _inbox_event(
            org_a,
            "pricing.loyalty.tier_changed",
            {"customer_id": str(customer.customer_id), "old_tier": "silver", "new_tier": "gold"},
        ),
        "order": _inbox_event(
            org_a,
            "orders.order.completed",
            {
                "customer_id": str(customer.customer_id),
                "order_id": str(uuid.uuid4()),
                "order_number": "F-0001234",
                "total": "125.50",
                "completed_at": "2026-11-20T15:30:00-05:00",
            },
            days_ago=10,
        ),
        "dead": _inbox_event(
            org_a,
            "pricing.loyalty.tier_changed",
            {"customer_id": "no-es-un-uuid", "new_tier": "diamond"},
            status="dead",
            error="customer_id falta o no es un UUID",
        ),
    }
    return customer, ids


def _row(page: str, event_id) -> str:
    return page.split(f'id="event-{event_id}"')[1].split("</tr>")[0]


def test_events_read_in_spanish_with_their_data_as_fields(login_as, inbox):
    customer, ids = inbox
    page = login_as("org_admin").get("/events/").text
    tier = _row(page, ids["tier"])
    assert "Cambio de nivel de lealtad" in tier and "Procesado" in tier
    assert "Nivel anterior" in tier and "Plata" in tier and "Nivel nuevo" in tier and "Oro" in tier
    assert f'href="/customers/{customer.customer_id}">Irene Rodríguez</a>' in tier
    order = _row(page, ids["order"])
    assert "Orden completada" in order and "US$125.50" in order and "F-0001234" in order
    dead = _row(page, ids["dead"])
    assert "Fallido" in dead and "no-es-un-uuid" in dead and "href" not in dead.split("<dl")[1]
    assert "Reintentar" in dead
    table = page.split('id="events"')[1]
    for raw in ("pricing.loyalty.tier_changed", "orders.order.completed", '"new_tier"'):
        assert raw not in table


def test_the_inbox_filters_by_type_state_and_date(login_as, inbox):
    _, ids = inbox
    admin = login_as("org_admin")
    orders = admin.get("/events/?event_type=orders.order.completed").text
    assert str(ids["order"]) in orders and str(ids["tier"]) not in orders
    dead = admin.get("/events/?status=dead").text
    assert str(ids["dead"]) in dead and str(ids["tier"]) not in dead
    today = clock.today()
    recent = admin.get(f"/events/?occurred_from={today - timedelta(days=2)}").text
    assert str(ids["tier"]) in recent and str(ids["order"]) not in recent
    older = admin.get(f"/events/?occurred_to={today - timedelta(days=5)}").text
    assert str(ids["order"]) in older and str(ids["tier"]) not in older


@pytest.mark.parametrize(
    "query, message",
    [
        ("event_type=orders.order.exploded", "inválid"),
        ("status=perdido", "inválid"),
        ("occurred_from=ayer", "fecha"),
        ("occurred_from=2026-12-01&occurred_to=2026-11-01", "anterior a la inicial"),
    ],
)
def test_bad_filters_are_a_clear_422(login_as, inbox, query, message):
    response = login_as("org_admin").get(f"/events/?{query}")
    assert response.status_code == 422
    assert message in response.text.lower() or message in response.text


def test_the_events_page_names_its_navigation(login_as, inbox):
    page = login_as("org_admin").get("/events/").text
    assert '<nav class="status-tabs" aria-label="Eventos por estado">' in page
    assert '<th><span class="visually-hidden">Acciones</span></th>' in page
