"""Customer rules: registration and edits with optimistic locking, status, addresses, exports.

Everything runs as the app role inside the current organization's scope (RLS); the reads that
feed pages, the search included, are in `portal/customers/selectors.py`.
"""

import uuid
from dataclasses import asdict

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from portal.audit import Actor, audit_record
from portal.customers.models import UNIQUE_FIELDS, Address, Customer, CustomerNote
from portal.customers.selectors import SearchFilters, customer_match_count
from portal.extensions import db
from portal.transaction import atomic
from portal.webhooks.services import outbox_publish

AUDITED_FIELDS = (
    "customer_type",
    "company_name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "document_type",
    "document_number",
    "birth_date",
    "gender",
    "preferred_language",
    "marketing_consent",
    "tags",
    "notes",
    "status",
    "status_reason",
)
ADDRESS_FIELDS = (
    "address_type",
    "recipient_name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "phone",
    "is_default",
    "is_active",
)


class CustomerError(ValueError):
    """A change that cannot be made, with a Spanish message and the field it concerns."""

    def __init__(self, message: str, field: str | None = None, existing: Customer | None = None):
        super().__init__(message)
        self.field = field
        self.existing = existing


class StaleEdit(CustomerError):
    """Somebody else saved the customer after this form was opened."""


def _snapshot(row, fields) -> dict:
    return {field: getattr(row, field) for field in fields}


def _changes(before: dict, after: dict) -> tuple[dict, dict]:
    changed = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in changed}, {key: after[key] for key in changed}


# --- search -------------------------------------------------------------------------------


@atomic
def customer_export_start(*, filters: SearchFilters, cap: int, actor: Actor) -> int:
    """Count and audit an export of the search (who, filters, rows); refuse one above cap rows."""
    rows = customer_match_count(filters, cap=cap)
    if rows > cap:
        raise CustomerError(
            f"La búsqueda tiene más de {cap:,} clientes y no se puede exportar completa. "
            "Use los filtros para acotarla e intente de nuevo."
        )
    audit_record(
        action="customer.exported",
        entity_type="customer_export",
        entity_id="clientes.csv",
        after={"filters": asdict(filters), "rows": rows},
        actor=actor,
    )
    return rows


def customer_get(customer_id: uuid.UUID, *, for_update: bool = False) -> Customer | None:
    """One customer of the current organization; None for unknown ids and other organizations'."""
    statement = sa.select(Customer).where(Customer.customer_id == customer_id)
    if for_update:
        statement = statement.with_for_update()
    return db.session.scalar(statement)


def _clash(data: dict, exclude: uuid.UUID | None) -> None:
    for field, label in UNIQUE_FIELDS.values():
        value = data.get(field)
        if not value:
            continue
        statement = sa.select(Customer).where(getattr(Customer, field) == value)
        if exclude:
            statement = statement.where(Customer.customer_id != exclude)
        existing = db.session.scalar(statement)
        if existing is not None:
            raise CustomerError(f"Ya existe un cliente con ese {label}.", field, existing)


def _flush_unique(data: dict, exclude: uuid.UUID | None) -> None:
    """Flush, turning a unique violation that raced past _clash into a field error."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as error:
        constraint = getattr(error.orig.diag, "constraint_name", None)
        if constraint not in UNIQUE_FIELDS:
            raise
        field, label = UNIQUE_FIELDS[constraint]
        db.session.rollback()
        existing = db.session.scalar(
            sa.select(Customer).where(getattr(Customer, field) == data[field])
        )
        raise CustomerError(f"Ya existe un cliente con ese {label}.", field, existing) from None


@atomic
def customer_create(*, data: dict, actor: Actor) -> Customer:
    """Register a customer; unique email/phone/document clashes are field errors."""
    _clash(data, None)
    customer = Customer(**data)
    db.session.add(customer)
    _flush_unique(data, None)
    audit_record(
        action="customer.created",
        entity_type="customer",
        entity_id=customer.customer_id,
        after=_snapshot(customer, AUDITED_FIELDS),
        actor=actor,
    )
    return customer


def _check_version(customer: Customer, version_id: int | str | None) -> None:
    if str(customer.version_id) != str(version_id):
        raise StaleEdit(
            "Otra persona guardó cambios en este cliente mientras usted editaba. "
            "Revise los datos actuales y vuelva a aplicar sus cambios."
        )


def _customer_locked(customer_id: uuid.UUID) -> Customer:
    customer = db.session.scalar(
        sa.select(Customer)
        .where(Customer.customer_id == customer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if customer is None:
        raise LookupError(customer_id)
    return customer


@atomic
def customer_update(*, customer_id: uuid.UUID, data: dict, version_id, actor: Actor) -> Customer:
    """Save an edit made on `version_id`; a stale version is refused, never overwritten."""
    customer = _customer_locked(customer_id)
    _check_version(customer, version_id)
    _clash(data, customer.customer_id)
    before = _snapshot(customer, AUDITED_FIELDS)
    for field, value in data.items():
        setattr(customer, field, value)
    changed_before, changed_after = _changes(before, _snapshot(customer, AUDITED_FIELDS))
    if not changed_after:
        return customer
    try:
        _flush_unique(data, customer.customer_id)
    except StaleDataError:
        db.session.rollback()
        raise StaleEdit(
            "Otra persona guardó cambios en este cliente. Recargue e intente de nuevo."
        ) from None
    audit_record(
        action="customer.updated",
        entity_type="customer",
        entity_id=customer.customer_id,
        before=changed_before,
        after=changed_after,
        actor=actor,
    )
    _publish_updated(customer, changed_after)
    return customer


def _publish_updated(customer: Customer, changed: dict) -> None:
    outbox_publish(
        event_type="customer.updated",
        data={"customer_id": customer.customer_id, "changed": changed},
    )


@atomic
def customer_set_status(
    *, customer_id: uuid.UUID, status: str, reason: str, version_id, actor: Actor
) -> Customer:
    """Change active/inactive/blocked with a reason; audited."""
    customer = _customer_locked(customer_id)
    _check_version(customer, version_id)
    if status == customer.status:
        raise CustomerError("El cliente ya tiene ese estado.", "status")
    before = _snapshot(customer, ("status", "status_reason"))
    customer.status = status
    customer.status_reason = reason
    db.session.flush()
    audit_record(
        action="customer.status_changed",
        entity_type="customer",
        entity_id=customer.customer_id,
        before=before,
        after={"status": status, "status_reason": reason},
        actor=actor,
    )
    _publish_updated(customer, {"status": status, "status_reason": reason})
    return customer


@atomic
def customer_note_add(*, customer_id: uuid.UUID, body: str, actor: Actor) -> CustomerNote:
    """Add a staff note to a customer (notes are never edited or deleted); audited."""
    if customer_get(customer_id) is None:
        raise LookupError(customer_id)
    note = CustomerNote(
        customer_id=customer_id, body=body, created_by=getattr(actor, "staff_user_id", None)
    )
    db.session.add(note)
    db.session.flush()
    audit_record(
        action="customer.note_added",
        entity_type="customer_note",
        entity_id=note.note_id,
        after={"customer_id": customer_id, "body": body},
        actor=actor,
    )
    return note


def address_get(customer_id: uuid.UUID, address_id: uuid.UUID) -> Address | None:
    """One address of one customer of the current organization."""
    return db.session.scalar(
        sa.select(Address).where(
            Address.customer_id == customer_id, Address.address_id == address_id
        )
    )


def _lock_customer(customer_id: uuid.UUID) -> None:
    # Serialises address changes per customer, so "one default" never races.
    db.session.execute(
        sa.select(Customer.customer_id).where(Customer.customer_id == customer_id).with_for_update()
    )


def _clear_default(customer_id: uuid.UUID) -> None:
    """Unset the customer's current default, before another address takes its place."""
    with db.session.no_autoflush:
        db.session.execute(
            sa.update(Address)
            .where(Address.customer_id == customer_id, Address.is_default.is_(True))
            .values(is_default=False, updated_at=sa.func.now())
            .execution_options(synchronize_session="fetch")
        )


@atomic
def address_create(*, customer_id: uuid.UUID, data: dict, actor: Actor) -> Address:
    """Add an address; making it the default unsets the previous default."""
    _lock_customer(customer_id)
    if data.get("is_default"):
        _clear_default(customer_id)
    address = Address(customer_id=customer_id, **data)
    db.session.add(address)
    db.session.flush()
    audit_record(
        action="address.created",
        entity_type="address",
        entity_id=address.address_id,
        after=_snapshot(address, ADDRESS_FIELDS),
        actor=actor,
    )
    return address


def _address_locked(customer_id: uuid.UUID, address_id: uuid.UUID) -> Address:
    _lock_customer(customer_id)
    address = address_get(customer_id, address_id)
    if address is None:
        raise LookupError(address_id)
    db.session.refresh(address)
    return address


@atomic
def address_update(
    *, customer_id: uuid.UUID, address_id: uuid.UUID, data: dict, actor: Actor
) -> Address:
    """Edit an address (an inactive one cannot become the default)."""
    address = _address_locked(customer_id, address_id)
    if data.get("is_default") and not address.is_active:
        raise CustomerError("Una dirección inactiva no puede ser la predeterminada.", "is_default")
    before = _snapshot(address, ADDRESS_FIELDS)
    if data.get("is_default") and not address.is_default:
        _clear_default(address.customer_id)
    for field, value in data.items():
        setattr(address, field, value)
    db.session.flush()
    changed_before, changed_after = _changes(before, _snapshot(address, ADDRESS_FIELDS))
    audit_record(
        action="address.updated",
        entity_type="address",
        entity_id=address.address_id,
        before=changed_before,
        after=changed_after,
        actor=actor,
    )
    return address


@atomic
def address_deactivate(*, customer_id: uuid.UUID, address_id: uuid.UUID, actor: Actor) -> Address:
    """Deactivate an address; it stops being the default."""
    address = _address_locked(customer_id, address_id)
    if not address.is_active:
        return address
    before = _snapshot(address, ("is_active", "is_default"))
    address.is_active = False
    address.is_default = False
    db.session.flush()
    audit_record(
        action="address.deactivated",
        entity_type="address",
        entity_id=address.address_id,
        before=before,
        after={"is_active": False, "is_default": False},
        actor=actor,
    )
    return address


def customer_count() -> int:
    """How many customers the current organization has."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(Customer))
