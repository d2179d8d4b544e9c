"""Customer reads for pages: the search, possible duplicates and the customer 360 page.

The text search calls the reviewed SECURITY DEFINER functions `customer_search` and
`customer_search_count`, because trigram/LIKE operators cannot use an index below an RLS policy.
"""

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from portal.customers.models import UNIQUE_FIELDS, Address, Customer
from portal.customers.timeline import TimelinePage, timeline_page
from portal.extensions import db
from portal.segments.models import CustomerSegment
from portal.validation import normalize_phone


@dataclass(frozen=True)
class CustomerPage:
    """What the customer page renders (its credit panel is the credit feature's own read)."""

    customer: Customer
    segment: CustomerSegment | None
    timeline: TimelinePage
    addresses: list[Address]


def customer_page(customer_id: uuid.UUID) -> CustomerPage | None:
    """The customer with its segment, activity timeline and addresses (three statements)."""
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
        timeline=timeline_page(customer_id),
        addresses=address_list(customer_id),
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


def address_for_billing(customer_id: uuid.UUID) -> Address | None:
    """Where a customer's statements go: an active billing address, else the default one."""
    return db.session.scalar(
        sa.select(Address)
        .where(Address.customer_id == customer_id, Address.is_active.is_(True))
        .order_by(
            Address.address_type.in_(("billing", "both")).desc(),
            Address.is_default.desc(),
            Address.created_at,
        )
        .limit(1)
    )


PAGE_SIZE = 25
COUNT_CAP = 1000


@dataclass(frozen=True)
class SearchFilters:
    """The search box and its filters."""

    query: str = ""
    status: str | None = None
    customer_type: str | None = None
    loyalty_tier: str | None = None
    segment: str | None = None


@dataclass(frozen=True)
class SearchPage:
    """One page of results; `next_cursor` is None on the last page."""

    customers: list[Customer]
    ranks: dict[uuid.UUID, float]
    next_cursor: str | None


def _recent_statement(filters: SearchFilters):
    statement = sa.select(Customer)
    if filters.status:
        statement = statement.where(Customer.status == filters.status)
    if filters.customer_type:
        statement = statement.where(Customer.customer_type == filters.customer_type)
    if filters.loyalty_tier:
        statement = statement.where(Customer.loyalty_tier == filters.loyalty_tier)
    if filters.segment:
        segment = (
            sa.select(CustomerSegment.segment_code)
            .where(CustomerSegment.customer_id == Customer.customer_id)
            .scalar_subquery()
        )
        statement = statement.where(sa.func.coalesce(segment, "new") == filters.segment)
    return statement


def _search_matches(filters: SearchFilters, *, after=(None, None), limit: int | None):
    """The search function's rows: customer_id, rank, and position (the order it lists them)."""
    return (
        sa.func.customer_search(
            filters.query,
            filters.status,
            filters.customer_type,
            filters.loyalty_tier,
            filters.segment,
            sa.cast(after[0], sa.Float),
            sa.cast(after[1], sa.Uuid),
            limit,
        )
        .table_valued(
            sa.column("customer_id", sa.Uuid),
            sa.column("rank", sa.Float),
            with_ordinality="position",
        )
        .render_derived()
    )


def _customers_matching(filters: SearchFilters, *, after=(None, None), limit: int | None):
    """The customers the search lists, with their rank, in its order (one statement)."""
    found = _search_matches(filters, after=after, limit=limit)
    return (
        sa.select(Customer, found.c.rank)
        .join(found, found.c.customer_id == Customer.customer_id)
        .order_by(found.c.position)
    )


def _count_function(filters: SearchFilters, *, cap: int):
    return sa.select(
        sa.func.customer_search_count(
            filters.query,
            filters.status,
            filters.customer_type,
            filters.loyalty_tier,
            filters.segment,
            cap,
        )
    )


def _parse_cursor(cursor: str | None) -> tuple:
    """(sort key text, customer id) of a page cursor; ValueError when it was tampered with."""
    if not cursor:
        return None, None
    key, _, identifier = cursor.rpartition("_")
    return key, uuid.UUID(identifier)


def customer_search(
    filters: SearchFilters, *, cursor: str | None = None, page_size: int = PAGE_SIZE
) -> SearchPage:
    """A page of customers: best matches first for a query, most recently active otherwise."""
    key, after_id = _parse_cursor(cursor)
    if not filters.query:
        statement = _recent_statement(filters)
        if after_id:
            statement = statement.where(
                sa.tuple_(Customer.activity_at, Customer.customer_id)
                < (datetime.fromisoformat(key), after_id)
            )
        customers = list(
            db.session.scalars(
                statement.order_by(Customer.activity_at.desc(), Customer.customer_id.desc()).limit(
                    page_size + 1
                )
            )
        )
        ranks = {}
        last_key = lambda customer: customer.activity_at.isoformat()  # noqa: E731
    else:
        rows = db.session.execute(
            _customers_matching(
                filters,
                after=(float(key), after_id) if after_id else (None, None),
                limit=page_size + 1,
            )
        ).all()
        ranks = {customer.customer_id: rank for customer, rank in rows}
        customers = [customer for customer, _ in rows]
        last_key = lambda customer: repr(ranks[customer.customer_id])  # noqa: E731
    next_cursor = None
    if len(customers) > page_size:
        customers = customers[:page_size]
        next_cursor = f"{last_key(customers[-1])}_{customers[-1].customer_id}"
    return SearchPage(customers, ranks, next_cursor)


def customer_match_count(filters: SearchFilters, *, cap: int = COUNT_CAP) -> int:
    """How many customers the search finds, counted up to cap + 1 ("more than 1000")."""
    if filters.query:
        return db.session.scalar(_count_function(filters, cap=cap + 1))
    statement = _recent_statement(filters).with_only_columns(Customer.customer_id)
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(statement.limit(cap + 1).subquery())
    )


def customer_export_rows(
    filters: SearchFilters, *, limit: int, batch_size: int = 1000
) -> Iterator[Customer]:
    """The first `limit` customers of the search, streamed from a server-side cursor."""
    if filters.query:
        statement = _customers_matching(filters, limit=limit)
    else:
        statement = (
            _recent_statement(filters)
            .order_by(Customer.activity_at.desc(), Customer.customer_id.desc())
            .limit(limit)
        )
    result = db.session.execute(
        statement.execution_options(yield_per=batch_size, stream_results=True)
    )
    for customer in result.scalars():
        yield customer
        db.session.expunge(customer)  # keep memory flat however many rows stream out


# --- customers ----------------------------------------------------------------------------


def contact_keys(
    *, email: str | None = None, phone: str | None = None, document: str | None = None
) -> dict:
    """Email, phone and document as typed, in the form they are stored and matched in.

    Email lowercased, phone in E.164 (None when it is not a valid number), document as its
    search key (letters and digits, uppercased), like the search box and the duplicate check.
    """
    try:
        phone = normalize_phone(phone.strip()[:30]) if phone and phone.strip() else None
    except ValueError:
        phone = None
    document_key = re.sub(r"[^0-9A-Za-z]", "", document or "").upper()[:50]
    return {
        "email": (email or "").strip().lower()[:255] or None,
        "phone": phone,
        "document_key": document_key or None,
    }


def customer_find(
    *, email: str | None = None, phone: str | None = None, document: str | None = None
) -> Customer | None:
    """The one customer with this email, phone or document (normalised first), if any."""
    keys = contact_keys(email=email, phone=phone, document=document)
    conditions = [getattr(Customer, column) == value for column, value in keys.items() if value]
    if not conditions:
        return None
    return db.session.scalar(
        sa.select(Customer).where(sa.or_(*conditions)).order_by(Customer.customer_id).limit(1)
    )


def customer_duplicates(
    *, data: dict, exclude: uuid.UUID | None = None, limit: int = 5
) -> list[tuple[Customer, str]]:
    """Existing customers that look like the one being typed: same keys or a very similar name."""
    found: dict[uuid.UUID, tuple[Customer, str]] = {}
    for field, label in UNIQUE_FIELDS.values():
        if data.get(field):
            for customer in db.session.scalars(
                sa.select(Customer).where(getattr(Customer, field) == data[field]).limit(limit)
            ):
                found.setdefault(customer.customer_id, (customer, f"mismo {label}"))
    name = (
        data.get("company_name")
        or f"{data.get('first_name') or ''} {data.get('last_name') or ''}".strip()
    )
    if len(name) >= 5:
        similar = _customers_matching(SearchFilters(query=name), limit=limit)
        for customer, rank in db.session.execute(similar):
            if rank >= 0.75:
                found.setdefault(customer.customer_id, (customer, "nombre muy parecido"))
    found.pop(exclude, None)
    return list(found.values())[:limit]


# --- addresses ----------------------------------------------------------------------------
