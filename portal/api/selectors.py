"""API reads: what the endpoints answer (plain dicts the schemas describe) and the keys page."""

import uuid

import sqlalchemy as sa

from portal.api.models import ApiKey, IdempotencyRecord
from portal.credit.models import CreditAccount, CreditUsage
from portal.credit.services import overdue_exists
from portal.customers.models import Customer
from portal.extensions import db

CUSTOMER_FIELDS = (
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "document_type",
    "document_number",
    "status",
    "loyalty_tier",
)


def customer_body(customer: Customer) -> dict:
    """The customer as the API shows it."""
    return {field: getattr(customer, field) for field in CUSTOMER_FIELDS}


def customer_credit(customer_id: uuid.UUID) -> dict | None:
    """The customer's credit standing in one statement; None when there is no such customer."""
    row = db.session.execute(
        sa.select(
            Customer.customer_id,
            Customer.status.label("customer_status"),
            CreditAccount.credit_account_id,
            CreditAccount.status,
            CreditAccount.credit_limit,
            CreditAccount.credit_used,
            CreditAccount.credit_available,
            CreditAccount.payment_term_days,
            sa.case(
                (
                    CreditAccount.credit_account_id.is_not(None),
                    overdue_exists(CreditAccount.credit_account_id),
                ),
                else_=False,
            ).label("overdue_hold"),
        )
        .outerjoin(CreditAccount, CreditAccount.customer_id == Customer.customer_id)
        .where(Customer.customer_id == customer_id)
    ).first()
    if row is None:
        return None
    return {
        "customer_id": row.customer_id,
        "customer_status": row.customer_status,
        "credit_account_id": row.credit_account_id,
        "status": row.status or "none",
        "credit_limit": row.credit_limit or 0,
        "credit_used": row.credit_used or 0,
        "credit_available": row.credit_available or 0,
        "overdue_hold": row.overdue_hold,
        "payment_term_days": row.payment_term_days,
        "currency": "USD",
    }


def charge_body(usage: CreditUsage, account: CreditAccount, order_number: str | None) -> dict:
    """A charge with its account's standing, and the order number it was made with."""
    return {
        "charge_id": usage.usage_id,
        "customer_id": account.customer_id,
        "credit_account_id": usage.credit_account_id,
        "order_id": usage.order_id,
        "order_number": order_number,
        "amount": usage.amount,
        "status": usage.status,
        "due_date": usage.due_date,
        "created_at": usage.created_at,
        "cancelled_at": usage.cancelled_at,
        "credit": {
            "credit_limit": account.credit_limit,
            "credit_used": account.credit_used,
            "credit_available": account.credit_available,
        },
    }


def charge_find(usage_id: uuid.UUID) -> dict | None:
    """One charge as the API shows it (read afresh), or None."""
    row = db.session.execute(
        sa.select(CreditUsage, CreditAccount, IdempotencyRecord.order_number)
        .join(CreditAccount, CreditAccount.credit_account_id == CreditUsage.credit_account_id)
        .outerjoin(IdempotencyRecord, IdempotencyRecord.usage_id == CreditUsage.usage_id)
        .where(CreditUsage.usage_id == usage_id)
        .limit(1)
        .execution_options(populate_existing=True)
    ).first()
    return charge_body(*row) if row else None


def charge_target(customer_id: uuid.UUID) -> tuple[bool, CreditAccount | None]:
    """Whether the customer exists in the organization, and its credit account (one statement)."""
    row = db.session.execute(
        sa.select(Customer.customer_id, CreditAccount)
        .outerjoin(CreditAccount, CreditAccount.customer_id == Customer.customer_id)
        .where(Customer.customer_id == customer_id)
    ).first()
    return (row is not None, row.CreditAccount if row else None)


def api_keys_list() -> list:
    """The current organization's keys, active first then newest, without their hashes."""
    return db.session.execute(
        sa.select(
            ApiKey.api_key_id,
            ApiKey.name,
            ApiKey.prefix,
            ApiKey.scopes,
            ApiKey.created_at,
            ApiKey.last_used_at,
            ApiKey.revoked_at,
        ).order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc())
    ).all()
