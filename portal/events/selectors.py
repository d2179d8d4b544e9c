"""The inbox page's reads: counts by state, and the latest events with their data as fields."""

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from portal import clock
from portal.customers.models import Customer
from portal.events.models import InboxEvent
from portal.extensions import db
from portal.formatting import datetime_short, label
from portal.money import money

PAGE_SIZE = 50


@dataclass(frozen=True)
class InboxFilters:
    """The inbox's filters: type, state, and the day it occurred (from, to; business days)."""

    event_type: str | None = None
    status: str | None = None
    occurred_from: date | None = None
    occurred_to: date | None = None


@dataclass(frozen=True)
class EventField:
    """One field of an event's data as staff read it; `customer_id` when it names a customer."""

    label: str
    text: str
    customer_id: uuid.UUID | None = None
    customer_name: str | None = None


@dataclass(frozen=True)
class InboxRow:
    """An event of the inbox and its data, field by field."""

    event: InboxEvent
    fields: list[EventField]


def inbox_counts() -> dict[str, int]:
    """Events per state."""
    rows = db.session.execute(
        sa.select(InboxEvent.status, sa.func.count()).group_by(InboxEvent.status)
    ).all()
    return {"received": 0, "processed": 0, "dead": 0} | dict(rows)


def inbox_recent(filters: InboxFilters, *, limit: int = PAGE_SIZE) -> list[InboxRow]:
    """The latest events that match the filters, newest first, with their fields."""
    statement = sa.select(InboxEvent).order_by(InboxEvent.received_at.desc()).limit(limit)
    if filters.status:
        statement = statement.where(InboxEvent.status == filters.status)
    if filters.event_type:
        statement = statement.where(InboxEvent.event_type == filters.event_type)
    if filters.occurred_from:
        statement = statement.where(
            InboxEvent.occurred_at >= clock.day_start(filters.occurred_from)
        )
    if filters.occurred_to:
        statement = statement.where(
            InboxEvent.occurred_at < clock.day_start(filters.occurred_to + timedelta(days=1))
        )
    rows = [InboxRow(event, event_fields(event.payload)) for event in db.session.scalars(statement)]
    named = {item.customer_id for row in rows for item in row.fields if item.customer_id}
    if not named:
        return rows
    names = dict(  # the customers the page names, in one statement
        db.session.execute(
            sa.select(Customer.customer_id, Customer.full_name).where(
                Customer.customer_id.in_(named)
            )
        ).all()
    )
    return [
        InboxRow(
            row.event,
            [replace(item, customer_name=names.get(item.customer_id)) for item in row.fields],
        )
        for row in rows
    ]


def _text(name: str, value) -> str:
    """A data value as staff read it; ValueError when it is not what the field should hold."""
    if name in {"old_tier", "new_tier"}:
        return label(value, "loyalty_tier")
    if name == "total":
        return money(Decimal(str(value)))
    if name == "completed_at":
        return datetime_short(datetime.fromisoformat(value))
    return str(value)


def _field(name: str, value) -> EventField:
    title = label(name, "event_field")
    if value is None or isinstance(value, dict | list):
        return EventField(title, "—" if value is None else str(value))
    try:
        text = _text(name, value)
        customer_id = uuid.UUID(value) if name == "customer_id" else None
    except (ValueError, TypeError, InvalidOperation):
        return EventField(title, str(value))  # a dead letter's bad value, as it came
    return EventField(title, text, customer_id)


def event_fields(payload) -> list[EventField]:
    """The fields of an event's `data`, in Spanish (a malformed payload: what can be read)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        return [EventField("Contenido", "sin datos legibles")]
    return [_field(name, value) for name, value in data.items()]
