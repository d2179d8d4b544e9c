"""Customer reads for pages: the customer 360 page in as few statements as it needs."""

import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from portal.audit import AuditEntry
from portal.customers.models import Address, Customer
from portal.extensions import db
from portal.segments.models import CustomerSegment


@dataclass(frozen=True)
class CustomerPage:
    """What the customer page renders (its credit panel is the credit feature's own read)."""

    customer: Customer
    segment: CustomerSegment | None
    timeline: list[AuditEntry]
    addresses: list[Address]


def customer_page(customer_id: uuid.UUID) -> CustomerPage | None:
    """The customer with its segment, change history and addresses (three statements)."""
    row = db.session.execute(
        sa.select(Customer, CustomerSegment)
        .outerjoin(CustomerSegment, CustomerSegment.customer_id == Customer.customer_id)
        .where(Customer.customer_id == customer_id)
    ).first()
    if row is None:
        return None
    customer, segment = row
    return CustomerPage(
        customer=customer,
        segment=segment,
        timeline=customer_timeline(customer_id),
        addresses=address_list(customer_id),
    )


def customer_timeline(customer_id: uuid.UUID, *, limit: int = 30) -> list[AuditEntry]:
    """Audited changes to the customer and its addresses, newest first."""
    address_ids = sa.select(sa.cast(Address.address_id, sa.String)).where(
        Address.customer_id == customer_id
    )
    return list(
        db.session.scalars(
            sa.select(AuditEntry)
            .where(
                sa.or_(
                    sa.and_(
                        AuditEntry.entity_type == "customer",
                        AuditEntry.entity_id == str(customer_id),
                    ),
                    sa.and_(
                        AuditEntry.entity_type == "address", AuditEntry.entity_id.in_(address_ids)
                    ),
                )
            )
            .order_by(AuditEntry.audit_id.desc())
            .limit(limit)
        )
    )


def address_list(customer_id: uuid.UUID) -> list[Address]:
    """A customer's addresses: active first, the default on top."""
    return list(
        db.session.scalars(
            sa.select(Address)
            .where(Address.customer_id == customer_id)
            .order_by(Address.is_active.desc(), Address.is_default.desc(), Address.created_at)
        )
    )
