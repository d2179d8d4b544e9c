"""Factories that create committed rows inside the right organization's scope."""

import contextlib
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache

import sqlalchemy as sa
from flask import Flask

from portal.api.services import api_key_create as _api_key_create
from portal.audit import SYSTEM_ACTOR, AuditEntry
from portal.auth.models import ROLES, Organization, StaffUser
from portal.auth.services import password_hash
from portal.credit.models import CreditAccount, CreditRequest
from portal.customers.models import Address, Customer
from portal.db import organization_scope
from portal.events.models import Purchase
from portal.extensions import db

TEST_PASSWORD = "correct horse battery staple"
_sequence = itertools.count(1)
_app: Flask | None = None


def bind(app: Flask) -> None:
    """Use this app for every factory call (each call runs in its own app context)."""
    global _app
    _app = app


@contextlib.contextmanager
def _scope(organization_id: uuid.UUID):
    with _app.app_context(), organization_scope(organization_id):
        yield


def _committed(row):
    """Add, commit and detach a row, its database defaults loaded (the session is the caller's)."""
    db.session.add(row)
    db.session.commit()
    db.session.refresh(row)
    db.session.expunge(row)
    return row


@cache
def _test_password_hash() -> str:
    return password_hash(TEST_PASSWORD)


@dataclass
class OrgFixture:
    """An organization and its users, one per role, keyed by role."""

    organization_id: uuid.UUID
    name: str
    users: dict[str, StaffUser] = field(default_factory=dict)


def organization_create(name: str) -> uuid.UUID:
    """A committed organization."""
    organization_id = uuid.uuid4()
    with _scope(organization_id):
        db.session.add(Organization(organization_id=organization_id, name=name))
        db.session.commit()
    return organization_id


def staff_create(organization_id: uuid.UUID, roles: list[str], **fields) -> StaffUser:
    """A committed staff user (password TEST_PASSWORD unless given a hash)."""
    number = next(_sequence)
    values = {
        "email": f"staff{number}@test.pa",
        "full_name": f"Persona {number}",
        "password_hash": _test_password_hash(),
        "roles": roles,
    } | fields
    with _scope(organization_id):
        return _committed(StaffUser(**values))


def organization_with_staff(name: str) -> OrgFixture:
    """An organization with one user for every role."""
    organization = OrgFixture(organization_create(name), name)
    for role in ROLES:
        organization.users[role] = staff_create(organization.organization_id, [role])
    return organization


def customer_create(organization_id: uuid.UUID, **fields) -> Customer:
    """A committed customer."""
    number = next(_sequence)
    values = {
        "first_name": "José",
        "last_name": f"Pérez {number}",
        "email": f"cliente{number}@correo.pa",
        "phone": f"+5076{number:07d}",
        "document_type": "cedula",
        "document_number": f"8-{number}-{number}",
    } | fields
    with _scope(organization_id):
        return _committed(Customer(**values))


def address_create(organization_id: uuid.UUID, customer_id: uuid.UUID, **fields):
    """A committed address."""
    values = {"address_line1": "Calle 50, Edificio 3", "city": "Panamá", "country": "PA"} | fields
    with _scope(organization_id):
        return _committed(Address(customer_id=customer_id, **values))


def customer_row(organization_id: uuid.UUID, customer_id: uuid.UUID):
    """The customer as stored now (None if not visible in that organization)."""
    with _scope(organization_id):
        customer = db.session.scalar(sa.select(Customer).where(Customer.customer_id == customer_id))
        if customer is not None:
            db.session.expunge(customer)
        return customer


def audit_entries(organization_id: uuid.UUID, entity_id) -> list:
    """Audit entries about one entity, oldest first."""
    with _scope(organization_id):
        entries = list(
            db.session.scalars(
                sa.select(AuditEntry)
                .where(AuditEntry.entity_id == str(entity_id))
                .order_by(AuditEntry.audit_id)
            )
        )
        for entry in entries:
            db.session.expunge(entry)
        return entries


def credit_account_create(organization_id: uuid.UUID, customer_id: uuid.UUID, **fields):
    """A committed credit account (approved, US$1,000 at 30 days unless told otherwise)."""
    values = {"credit_limit": Decimal("1000.00"), "payment_term_days": 30, "status": "approved"}
    requested_by = fields.pop("requested_by", None)
    with _scope(organization_id):
        account = CreditAccount(customer_id=customer_id, **(values | fields))
        db.session.add(account)
        if account.status == "pending":  # a pending account always has its request
            requester = requested_by or db.session.scalar(
                sa.select(StaffUser.staff_user_id)
                .where(sa.literal("branch_staff") == sa.any_(StaffUser.roles))
                .order_by(StaffUser.email)
                .limit(1)
            )
            db.session.flush()
            db.session.add(
                CreditRequest(
                    credit_account_id=account.credit_account_id,
                    kind="new_line",
                    requested_limit=Decimal("1000.00"),
                    requested_term_days=30,
                    reason="Solicitud de prueba",
                    requested_by=requester,
                )
            )
        return _committed(account)


def order_number(organization_id: uuid.UUID, customer_id: uuid.UUID, **fields) -> str:
    """A completed order of the customer in the purchases projection; its number."""
    number = next(_sequence)
    values = {
        "order_id": uuid.uuid4(),
        "order_number": f"F-{number:07d}",
        "total": Decimal("100.00"),
        "completed_at": datetime.now(UTC),
        "event_occurred_at": datetime.now(UTC),
        "status": "completed",
    } | fields
    with _scope(organization_id):
        return _committed(Purchase(customer_id=customer_id, **values)).order_number


@contextlib.contextmanager
def scoped(organization_id: uuid.UUID):
    """An app context scoped to one organization, for calling services directly."""
    with _scope(organization_id):
        yield
        db.session.rollback()


ALL_SCOPES = ("customers:read", "credit:read", "credit:charge")


def api_key_create(organization_id: uuid.UUID, scopes=ALL_SCOPES, name: str = "Checkout") -> str:
    """A committed API key of the organization; returns the whole key (shown once)."""
    with _scope(organization_id):
        _, key = _api_key_create(name=name, scopes=list(scopes), actor=SYSTEM_ACTOR)
    return key
