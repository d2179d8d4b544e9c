"""The customer's activity timeline: one feed, newest first, written for staff in Spanish.

Five sources, read in one statement (a UNION ALL of one indexed, limited branch per source):
field changes of the customer and its addresses (the audit log), credit events of its account
(the audit log), tier changes (applied `pricing.loyalty.tier_changed` events of the inbox),
segment changes (`customer_segment_changes`, written by the recompute) and staff notes
(`customer_notes`). Paged by keyset on (occurred_at, item key); the key is unique across
sources because each source prefixes its own ids.
"""

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from portal.audit import AuditEntry
from portal.auth.models import StaffUser
from portal.customers.forms import COUNTRIES
from portal.customers.models import ADDRESS_TYPES, TIMELINE_KINDS, Address, CustomerNote
from portal.events.models import TIER_EVENT, InboxEvent
from portal.extensions import db
from portal.formatting import date_medium, label
from portal.money import money
from portal.segments.models import CustomerSegmentChange

# The credit feature imports customers; its table is named here, not its model, to keep the
# import one-way.
CREDIT_ACCOUNTS = sa.table(
    "credit_accounts", sa.column("credit_account_id", sa.Uuid), sa.column("customer_id", sa.Uuid)
)
PAGE_SIZE = 20
# The credit account's audited transitions staff follow on the customer (charges and payments
# are the credit panel's own list).
CREDIT_ACTIONS = (
    "credit.requested",
    "credit.approved",
    "credit.rejected",
    "credit.suspended",
    "credit.reactivated",
    "credit.limit_changed",
    "credit.closed",
    "credit.increase_requested",
    "credit.increase_approved",
    "credit.increase_rejected",
    "credit.write_off_requested",
    "credit.write_off_approved",
    "credit.write_off_rejected",
    "credit.payment_reversed",
    "credit.late_fee_posted",
    "credit.late_fee_waived",
    "credit.late_fees_exemption",
)
# How each audited field's value reads: a label table, or a formatter.
VALUE_LABELS = {
    "status": "customer_status",
    "customer_type": "customer_type",
    "document_type": "document_type",
    "gender": "gender",
    "preferred_language": "language",
    "address_type": "address_type",
}


@dataclass(frozen=True)
class TimelineItem:
    """One line of the feed: what happened, who did it, when, and its details in Spanish."""

    kind: str
    key: str
    occurred_at: datetime
    title: str
    actor: str | None
    lines: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def cursor(self) -> str:
        """The keyset position of this item, for the next page's link."""
        return f"{self.occurred_at.isoformat()}_{self.key}"


@dataclass(frozen=True)
class TimelinePage:
    """A page of the feed; `next_cursor` is None on the last page."""

    items: list[TimelineItem]
    next_cursor: str | None
    kind: str | None


def cursor_parse(cursor: str | None) -> tuple[datetime, str] | None:
    """(occurred_at, key) of a page cursor; ValueError when it was tampered with."""
    if not cursor:
        return None
    moment, _, key = cursor.rpartition("_")
    if not key or len(key) > 40 or key[0] not in "atsn" or not key[1:].replace("-", "").isalnum():
        raise ValueError(cursor)
    return datetime.fromisoformat(moment), key


def _inline(value: str):
    """A constant written into the SQL text (not a parameter)."""
    return sa.literal(value, literal_execute=True)


def _branch(kind, key, occurred_at, action, actor, before, after, detail):
    return sa.select(
        sa.literal(kind).label("kind"),
        key.label("item_key"),
        occurred_at.label("occurred_at"),
        sa.cast(action, sa.Text).label("action"),
        sa.cast(actor, sa.Text).label("actor"),
        sa.cast(before, JSONB).label("before"),
        sa.cast(after, JSONB).label("after"),
        sa.cast(detail, JSONB).label("detail"),
    )


# The feed's parameters: the statement for a set of kinds is built once and reused (building
# its union of six branches cost a few milliseconds of Python on every customer page).
_CUSTOMER_ID = sa.bindparam("customer_id", type_=sa.Uuid)
_CUSTOMER_TEXT = sa.bindparam("customer_text", type_=sa.Text)
_AFTER = (
    sa.bindparam("after_at", type_=sa.DateTime(timezone=True)),
    sa.bindparam("after_key", type_=sa.Text),
)
_LIMIT = sa.bindparam("limit", type_=sa.Integer)


def _paged(statement, occurred_at, key, after: bool):
    """One source's branch: after the cursor (if any), newest first, at most `limit` rows."""
    if after:
        statement = statement.where(sa.tuple_(occurred_at, key) < sa.tuple_(*_AFTER))
    return statement.order_by(occurred_at.desc(), key.desc()).limit(_LIMIT)


@cache
def _feed(kinds: tuple[str, ...], after: bool):
    """The feed statement of these kinds, from a cursor or from the newest item."""
    customer_id, customer_text = _CUSTOMER_ID, _CUSTOMER_TEXT
    audit_key = "a" + sa.func.lpad(sa.cast(AuditEntry.audit_id, sa.Text), 19, "0")
    branches = []
    if "change" in kinds:
        customer_changes = _branch(
            "change",
            audit_key,
            AuditEntry.created_at,
            AuditEntry.action,
            AuditEntry.actor_label,
            AuditEntry.before,
            AuditEntry.after,
            sa.null(),
        ).where(AuditEntry.entity_type == "customer", AuditEntry.entity_id == customer_text)
        address_changes = (
            _branch(
                "change",
                audit_key,
                AuditEntry.created_at,
                AuditEntry.action,
                AuditEntry.actor_label,
                AuditEntry.before,
                AuditEntry.after,
                sa.func.jsonb_build_object(
                    "address_type", Address.address_type, "address_line1", Address.address_line1
                ),
            )
            .join(Address, sa.cast(Address.address_id, sa.String) == AuditEntry.entity_id)
            .where(AuditEntry.entity_type == "address", Address.customer_id == customer_id)
        )
        branches += [
            _paged(customer_changes, AuditEntry.created_at, audit_key, after),
            _paged(address_changes, AuditEntry.created_at, audit_key, after),
        ]
    if "credit" in kinds:
        accounts = sa.select(sa.cast(CREDIT_ACCOUNTS.c.credit_account_id, sa.String)).where(
            CREDIT_ACCOUNTS.c.customer_id == customer_id
        )
        credit = _branch(
            "credit",
            audit_key,
            AuditEntry.created_at,
            AuditEntry.action,
            AuditEntry.actor_label,
            AuditEntry.before,
            AuditEntry.after,
            sa.null(),
        ).where(
            AuditEntry.entity_type == "credit_account",
            AuditEntry.entity_id.in_(accounts),
            AuditEntry.action.in_(CREDIT_ACTIONS),
        )
        branches.append(_paged(credit, AuditEntry.created_at, audit_key, after))
    if "tier" in kinds:
        tier_key = "t" + sa.cast(InboxEvent.event_id, sa.Text)
        tiers = _branch(
            "tier",
            tier_key,
            InboxEvent.occurred_at,
            sa.literal(TIER_EVENT),
            sa.null(),
            sa.null(),
            sa.null(),
            InboxEvent.payload["data"],
        ).where(
            # Written as idx_inbox_customer_tier states them (constants inline, `->`), so the
            # planner matches its expression and predicate under any plan.
            InboxEvent.event_type == _inline(TIER_EVENT),
            InboxEvent.status == _inline("processed"),
            InboxEvent.payload.op("->")(_inline("data")).op("->>")(_inline("customer_id"))
            == customer_text,
        )
        branches.append(_paged(tiers, InboxEvent.occurred_at, tier_key, after))
    if "segment" in kinds:
        segment_key = "s" + sa.cast(CustomerSegmentChange.change_id, sa.Text)
        segments = _branch(
            "segment",
            segment_key,
            CustomerSegmentChange.changed_at,
            sa.literal("segment.changed"),
            sa.null(),
            sa.null(),
            sa.null(),
            sa.func.jsonb_build_object(
                "previous",
                CustomerSegmentChange.previous_segment,
                "segment",
                CustomerSegmentChange.segment,
            ),
        ).where(CustomerSegmentChange.customer_id == customer_id)
        branches.append(_paged(segments, CustomerSegmentChange.changed_at, segment_key, after))
    if "note" in kinds:
        note_key = "n" + sa.cast(CustomerNote.note_id, sa.Text)
        notes = (
            _branch(
                "note",
                note_key,
                CustomerNote.created_at,
                sa.literal("customer.note_added"),
                sa.func.coalesce(StaffUser.full_name, "Sistema"),
                sa.null(),
                sa.null(),
                sa.func.jsonb_build_object("body", CustomerNote.body),
            )
            .outerjoin(StaffUser, StaffUser.staff_user_id == CustomerNote.created_by)
            .where(CustomerNote.customer_id == customer_id)
        )
        branches.append(_paged(notes, CustomerNote.created_at, note_key, after))
    feed = sa.union_all(*(branch.subquery().select() for branch in branches)).subquery()
    return sa.select(feed).order_by(feed.c.occurred_at.desc(), feed.c.item_key.desc()).limit(_LIMIT)


def timeline_page(
    customer_id: uuid.UUID, *, kind: str | None = None, cursor: str | None = None
) -> TimelinePage:
    """A page of the customer's feed (one statement), of one kind or all of them."""
    kinds = (kind,) if kind in TIMELINE_KINDS else tuple(TIMELINE_KINDS)
    after = cursor_parse(cursor)
    rows = db.session.execute(
        _feed(kinds, after is not None),
        {
            "customer_id": customer_id,
            "customer_text": str(customer_id),
            "after_at": after[0] if after else None,
            "after_key": after[1] if after else None,
            "limit": PAGE_SIZE + 1,
        },
    ).all()
    items = [_item(row) for row in rows[:PAGE_SIZE]]
    next_cursor = items[-1].cursor if len(rows) > PAGE_SIZE else None
    return TimelinePage(items, next_cursor, kind if kind in TIMELINE_KINDS else None)


# --- in Spanish ----------------------------------------------------------------------------


def _value(name: str, value) -> str:
    """A stored value as staff read it."""
    if value is None or value == "" or value == []:
        return "vacío"
    if isinstance(value, bool):
        return "sí" if value else "no"
    if name in VALUE_LABELS:
        return label(value, VALUE_LABELS[name])
    if name == "country":
        return dict(COUNTRIES).get(value, value)
    if name == "birth_date":
        return date_medium(date.fromisoformat(value))
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def _changes(before: dict | None, after: dict | None, kind: str, prefix: str = "") -> list[str]:
    lines = []
    for name, value in (after or {}).items():
        what = prefix + label(name, kind)
        if before and name in before:
            lines.append(
                f"{what} cambió de «{_value(name, before[name])}» a «{_value(name, value)}»"
            )
        else:
            lines.append(f"{what}: {_value(name, value)}")
    return lines


def _money(value) -> str:
    """An audited amount (stored as text in the JSON) in dollars."""
    return money(Decimal(str(value)))


def _address_name(detail: dict) -> str:
    kind = ADDRESS_TYPES.get(detail["address_type"], detail["address_type"])
    return f"Dirección de {kind.lower()}"


def _credit_lines(action: str, before: dict | None, after: dict | None) -> list[str]:
    before, after = before or {}, after or {}
    request = after.get("request") or {}
    lines = []
    if action == "credit.payment_reversed":
        return [f"Motivo: {after.get('reversal_reason')}"]
    if action == "credit.late_fee_posted":
        return [f"Monto: {_money(after['amount'])} sobre {_money(after['overdue'])} vencido"]
    if action == "credit.late_fee_waived":
        return [f"Monto: {_money(after['amount'])}", f"Motivo: {after.get('reason')}"]
    if action == "credit.late_fees_exemption":
        state = "Exonerada" if after.get("late_fees_exempt") else "Sin exoneración"
        return [f"{state}. Motivo: {after.get('reason')}"]
    if request.get("requested_limit") and action.endswith("requested"):
        lines.append(f"Límite solicitado: {_money(request['requested_limit'])}")
    if request.get("write_off_amount"):
        lines.append(f"Saldo a castigar: {_money(request['write_off_amount'])}")
    if before.get("credit_limit") != after.get("credit_limit") and after.get("credit_limit"):
        previous = before.get("credit_limit")
        lines.append(
            f"Límite cambió de {_money(previous)} a {_money(after['credit_limit'])}"
            if previous
            else f"Límite: {_money(after['credit_limit'])}"
        )
    if action == "credit.approved" and after.get("payment_term_days"):
        lines.append(f"Plazo: {after['payment_term_days']} días")
    for text, title in (
        (request.get("reason") if action.endswith("requested") else None, "Motivo"),
        (after.get("suspension_reason") if action == "credit.suspended" else None, "Motivo"),
        (request.get("decision_notes"), "Notas de la decisión"),
        (after.get("approval_notes") if action == "credit.reactivated" else None, "Notas"),
    ):
        if text:
            lines.append(f"{title}: {text}")
    return lines


def _item(row) -> TimelineItem:
    base = {"kind": row.kind, "key": row.item_key, "occurred_at": row.occurred_at}
    if row.kind == "tier":
        old, new = row.detail.get("old_tier"), row.detail.get("new_tier")
        title = f"Nivel de lealtad: {label(new, 'loyalty_tier')}"
        lines = [f"Antes: {label(old, 'loyalty_tier')}"] if old else []
        return TimelineItem(**base, title=title, actor="Sistema de precios", lines=lines)
    if row.kind == "segment":
        return TimelineItem(
            **base,
            title=f"Segmento: {label(row.detail['segment'], 'segment')}",
            actor="Cálculo de segmentos",
            lines=[f"Antes: {label(row.detail['previous'], 'segment')}"],
        )
    if row.kind == "note":
        return TimelineItem(**base, title="Nota", actor=row.actor, note=row.detail["body"])
    title = label(row.action, "audit_action")
    if row.kind == "credit":
        lines = _credit_lines(row.action, row.before, row.after)
    elif row.detail is not None:  # an address of the customer
        name = _address_name(row.detail)
        title = f"{title}: {name}, {row.detail['address_line1']}"
        lines = []
        if row.action == "address.updated":
            lines = _changes(row.before, row.after, "address_field", prefix=f"{name}: ")
    elif row.action == "customer.created":
        lines = []
    else:
        lines = _changes(row.before, row.after, "customer_field")
    return TimelineItem(**base, title=title, actor=row.actor, lines=lines)
