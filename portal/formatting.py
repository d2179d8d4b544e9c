"""Jinja filters for money, dates and labels, formatted for Panama in Spanish."""

from decimal import Decimal

from flask import Flask
from flask_babel import format_currency, format_date, format_datetime

from portal.auth.models import ROLES
from portal.credit.models import ACCOUNT_STATUSES
from portal.customers.models import (
    ADDRESS_TYPES,
    CUSTOMER_STATUSES,
    CUSTOMER_TYPES,
    DOCUMENT_TYPES,
    LOYALTY_TIERS,
    SEGMENTS,
)

LABELS = {
    "role": ROLES,
    "customer_status": CUSTOMER_STATUSES,
    "customer_type": CUSTOMER_TYPES,
    "loyalty_tier": LOYALTY_TIERS,
    "document_type": DOCUMENT_TYPES,
    "address_type": ADDRESS_TYPES,
    "segment": SEGMENTS,
    "credit_status": ACCOUNT_STATUSES,
}


def money(value: Decimal | None) -> str:
    """USD amount as shown in Panama, e.g. US$1,234.50."""
    return "—" if value is None else format_currency(value, "USD")


def label(value: str | None, kind: str) -> str:
    """Spanish label of a stored code."""
    return "—" if value is None else LABELS[kind].get(value, value)


def init_app(app: Flask) -> None:
    """Register the filters."""
    app.add_template_filter(money, "money")
    app.add_template_filter(label, "label")
    app.add_template_filter(lambda value: format_datetime(value, "short"), "datetime_short")
    app.add_template_filter(lambda value: format_date(value, "medium"), "date_medium")
