"""Reading customers inside the current organization's scope."""

import uuid

import sqlalchemy as sa

from portal.customers.models import Address, Customer
from portal.extensions import db

PAGE_SIZE = 50


def customer_recent(*, limit: int = PAGE_SIZE) -> list[Customer]:
    """Most recently active customers first (last purchase, then creation)."""
    return list(
        db.session.scalars(
            sa.select(Customer)
            .order_by(
                Customer.last_purchase_at.desc().nulls_last(),
                Customer.created_at.desc(),
                Customer.customer_id,
            )
            .limit(limit)
        )
    )


def customer_get(customer_id: uuid.UUID) -> Customer | None:
    """One customer of the current organization; None for unknown ids and other organizations'."""
    return db.session.scalar(sa.select(Customer).where(Customer.customer_id == customer_id))


def customer_360(customer_id: uuid.UUID) -> sa.Row | None:
    """The customer's row of v_customer_360 (RLS applies through the view)."""
    view = sa.table("v_customer_360", *(sa.column(name) for name in _VIEW_COLUMNS))
    return db.session.execute(sa.select(view).where(view.c.customer_id == customer_id)).first()


def address_list(customer_id: uuid.UUID) -> list[Address]:
    """A customer's addresses, default and active first."""
    return list(
        db.session.scalars(
            sa.select(Address)
            .where(Address.customer_id == customer_id)
            .order_by(Address.is_active.desc(), Address.is_default.desc(), Address.created_at)
        )
    )


def customer_count() -> int:
    """How many customers the current organization has."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(Customer))


_VIEW_COLUMNS = (
    "customer_id",
    "loyalty_tier",
    "credit_status",
    "credit_limit",
    "credit_used",
    "credit_available",
    "payment_term_days",
    "segment_code",
    "rfm_recency",
    "rfm_frequency",
    "rfm_monetary",
    "rfm_score",
    "lifetime_value",
    "is_vip",
)
