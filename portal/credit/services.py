"""Credit rules: requests with four-eyes, charges that never overspend, FIFO payments, overdue.

Ledger invariant, for every account:
    credit_used = sum over pending and overdue usages of (amount - allocated)
    credit_available = credit_limit - credit_used >= 0
Every operation keeps it inside one transaction, with the account row locked or a conditional
UPDATE, and the database CHECKs (credit_used <= credit_limit, amounts > 0) as the backstop.
"""

import logging
import uuid
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from portal import clock
from portal.audit import SYSTEM_ACTOR, Actor, audit_record
from portal.auth.models import StaffUser
from portal.credit.models import (
    ACCOUNT_STATUSES,
    CreditAccount,
    CreditAgingMonth,
    CreditPayment,
    CreditPaymentAllocation,
    CreditRequest,
    CreditUsage,
)
from portal.credit.reports import AGING_KEYS, aging_summary, history_months, month_end
from portal.customers.models import Customer
from portal.db import current_organization_id
from portal.extensions import db
from portal.money import money
from portal.settings.services import organization_settings_get
from portal.transaction import atomic
from portal.webhooks.services import outbox_publish

log = logging.getLogger(__name__)

ACCOUNT_FIELDS = (
    "status",
    "credit_limit",
    "credit_used",
    "payment_term_days",
    "approved_by",
    "approved_at",
    "approval_notes",
    "suspended_at",
    "suspension_reason",
)
REQUEST_FIELDS = (
    "credit_request_id",
    "kind",
    "requested_limit",
    "requested_term_days",
    "reason",
    "requested_by",
    "state",
    "decided_by",
    "decision_notes",
    "approved_limit",
    "approved_term_days",
)


class CreditError(ValueError):
    """A credit operation that cannot be done: a Spanish message, the field, a stable code."""

    def __init__(self, message: str, field: str | None = None, code: str = "credit_refused"):
        super().__init__(message)
        self.field = field
        self.code = code


def _snapshot(account: CreditAccount, request: CreditRequest | None = None) -> dict:
    snapshot = {field: getattr(account, field) for field in ACCOUNT_FIELDS}
    if request is not None:
        snapshot["request"] = {field: getattr(request, field) for field in REQUEST_FIELDS}
    return snapshot


# Audited transitions other services hear about, as outbound events (the outbox).
OUTBOUND_EVENTS = {
    "credit.approved": "customer.credit.approved",
    "credit.suspended": "customer.credit.suspended",
    "credit.limit_changed": "customer.credit.limit_changed",
    "credit.increase_approved": "customer.credit.limit_changed",
}


def _audit_account(
    action: str,
    account: CreditAccount,
    before: dict | None,
    actor: Actor,
    request: CreditRequest | None = None,
) -> None:
    """Audit a transition and, for those other services follow, publish it in the outbox."""
    after = _snapshot(account, request)
    audit_record(
        action=action,
        entity_type="credit_account",
        entity_id=account.credit_account_id,
        before=before,
        after=after,
        actor=actor,
    )
    if action in OUTBOUND_EVENTS:
        outbox_publish(
            event_type=OUTBOUND_EVENTS[action],
            data={
                "customer_id": account.customer_id,
                "credit_account_id": account.credit_account_id,
                "status": account.status,
                "credit_limit": account.credit_limit,
                "payment_term_days": account.payment_term_days,
                "previous_credit_limit": (before or {}).get("credit_limit"),
                "reason": account.suspension_reason if account.status == "suspended" else None,
            },
        )


# --- accounts ------------------------------------------------------------------------------


def account_get(account_id: uuid.UUID, *, for_update: bool = False) -> CreditAccount | None:
    """One account of the current organization (locked, and re-read under the lock, if asked)."""
    statement = sa.select(CreditAccount).where(CreditAccount.credit_account_id == account_id)
    if for_update:
        # populate_existing: a row the session already holds (e.g. loaded by the view before
        # another transaction changed it) is refreshed from the locked row, never used stale.
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return db.session.scalar(statement)


def _account_locked(account_id: uuid.UUID) -> CreditAccount:
    account = account_get(account_id, for_update=True)
    if account is None:
        raise LookupError(account_id)
    return account


def account_for_customer(customer_id: uuid.UUID) -> CreditAccount | None:
    """The customer's account, if any."""
    return db.session.scalar(
        sa.select(CreditAccount).where(CreditAccount.customer_id == customer_id)
    )


def credit_request_pending(account_id: uuid.UUID) -> CreditRequest | None:
    """The account's request waiting for a decision (at most one), if any."""
    return db.session.scalar(
        sa.select(CreditRequest).where(
            CreditRequest.credit_account_id == account_id, CreditRequest.state == "pending"
        )
    )


def _no_pending_request(account_id: uuid.UUID) -> None:
    if credit_request_pending(account_id) is not None:
        raise CreditError("La cuenta ya tiene una solicitud pendiente de decisión.")


def account_requester(account_id: uuid.UUID) -> uuid.UUID | None:
    """Who requested the account's line (its latest new-line request), if anyone."""
    return db.session.scalar(
        sa.select(CreditRequest.requested_by)
        .where(CreditRequest.credit_account_id == account_id, CreditRequest.kind == "new_line")
        .order_by(CreditRequest.requested_at.desc())
        .limit(1)
    )


def _within_maximum(limit: Decimal, field: str) -> None:
    # Share lock on the settings row: concurrent decisions proceed together, a change of the
    # maximum waits for them (and they for it), so none commits against a stale maximum.
    maximum = organization_settings_get(lock="share").max_credit_limit
    if limit > maximum:
        raise CreditError(
            f"El límite supera el máximo de la organización ({money(maximum)}).", field
        )


REQUESTABLE = ("cancelled", "closed")  # a rejected line or a closed account: ask again


def credit_request_allowed(*, customer: Customer, account: CreditAccount | None) -> bool:
    """Whether a new line may be requested: an active customer without a live account."""
    return customer.status == "active" and (account is None or account.status in REQUESTABLE)


@atomic
def credit_request(
    *,
    customer_id: uuid.UUID,
    limit: Decimal,
    term_days: int,
    notes: str,
    requester: StaffUser,
) -> tuple[CreditRequest, bool]:
    """Ask for a credit line (again after a rejection); created=False for a repeated submit."""
    customer = db.session.scalar(sa.select(Customer).where(Customer.customer_id == customer_id))
    if customer is None:
        raise LookupError(customer_id)
    if customer.status != "active":
        raise CreditError("Solo un cliente activo puede solicitar crédito.")
    _within_maximum(limit, "requested_limit")
    # Concurrent requests for one customer meet here: the second waits for the first to commit,
    # then finds its account instead of failing on the unique customer constraint.
    created = db.session.execute(
        pg_insert(CreditAccount)
        .values(
            organization_id=current_organization_id(),
            customer_id=customer_id,
            credit_limit=Decimal("0"),
            payment_term_days=term_days,
            status="pending",
        )
        .on_conflict_do_nothing(constraint="unique_org_credit_customer")
        .returning(CreditAccount.credit_account_id)
    ).scalar()
    account = db.session.scalar(
        sa.select(CreditAccount)
        .where(CreditAccount.customer_id == customer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    before = None
    if created is None:
        if account.status == "pending":
            pending = credit_request_pending(account.credit_account_id)
            if (
                pending.requested_by == requester.staff_user_id
                and pending.requested_limit == limit
                and pending.requested_term_days == term_days
            ):
                return pending, False  # the same request submitted twice (a double click)
            raise CreditError("El cliente ya tiene una solicitud de crédito pendiente.")
        if account.status not in REQUESTABLE:
            status = ACCOUNT_STATUSES[account.status].lower()
            raise CreditError(f"El cliente ya tiene una cuenta de crédito ({status}).")
        before = _snapshot(account)
        account.status = "pending"
        account.credit_limit = Decimal("0")
        account.payment_term_days = term_days
        account.approved_by = account.approved_at = account.approval_notes = None
        account.closed_at = account.closed_by = account.closure_reason = None
    request = CreditRequest(
        credit_account_id=account.credit_account_id,
        kind="new_line",
        requested_limit=limit,
        requested_term_days=term_days,
        reason=notes,
        requested_by=requester.staff_user_id,
    )
    db.session.add(request)
    db.session.flush()
    _audit_account("credit.requested", account, before, requester, request=request)
    return request, True


@atomic
def credit_increase_request(
    *, account_id: uuid.UUID, limit: Decimal, reason: str, requester: StaffUser
) -> CreditRequest:
    """Ask for a higher limit on an approved account; another approver decides."""
    account = _account_locked(account_id)
    if account.status != "approved":
        raise CreditError("Solo se pide un aumento para una cuenta aprobada.")
    if limit <= account.credit_limit:
        raise CreditError(
            f"El límite solicitado debe ser mayor que el actual ({money(account.credit_limit)}).",
            "requested_limit",
        )
    _within_maximum(limit, "requested_limit")
    _no_pending_request(account_id)
    request = CreditRequest(
        credit_account_id=account_id,
        kind="increase",
        requested_limit=limit,
        reason=reason,
        requested_by=requester.staff_user_id,
    )
    db.session.add(request)
    db.session.flush()
    _audit_account(
        "credit.increase_requested", account, _snapshot(account), requester, request=request
    )
    return request


def _pending_for_decision(
    request_id: uuid.UUID, approver: StaffUser
) -> tuple[CreditRequest, CreditAccount]:
    request = db.session.scalar(
        sa.select(CreditRequest)
        .where(CreditRequest.credit_request_id == request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if request is None:
        raise LookupError(request_id)
    account = _account_locked(request.credit_account_id)
    if request.state != "pending":
        raise CreditError("Esta solicitud ya fue decidida.")
    if request.requested_by == approver.staff_user_id:
        raise CreditError("No puede decidir una solicitud que usted mismo creó (doble control).")
    return request, account


def _within_approval_level(amount: Decimal, approver: StaffUser) -> None:
    # Above the organization's approval level only an org admin decides (both ways: a refusal
    # of a large line is as much a credit decision as its approval).
    level = organization_settings_get(lock="share").approval_level
    if amount > level and not approver.has_role("org_admin"):
        raise CreditError(
            f"Supera el nivel de aprobación ({money(level)}): debe decidirla un aprobador que "
            "sea administrador de la organización."
        )


@atomic
def credit_approve(
    *,
    request_id: uuid.UUID,
    approver: StaffUser,
    limit: Decimal | None,
    term_days: int | None,
    notes: str | None,
) -> CreditRequest:
    """Approve a pending request, possibly with another limit or terms (never one's own)."""
    request, account = _pending_for_decision(request_id, approver)
    if request.kind == "write_off":
        _write_off_post(request, account, approver, notes=notes)
        return request
    limit = limit or request.requested_limit
    _within_maximum(limit, "credit_limit")
    _within_approval_level(max(limit, request.requested_limit), approver)
    before = _snapshot(account, request)
    if request.kind == "increase":
        if account.status != "approved":
            raise CreditError("La cuenta ya no está aprobada: rechace el aumento o reactívela.")
        if limit <= account.credit_limit:
            raise CreditError(
                f"El límite aprobado debe ser mayor que el actual ({money(account.credit_limit)}).",
                "credit_limit",
            )
        term_days = account.payment_term_days
    else:
        term_days = term_days or request.requested_term_days
        account.status = "approved"
        account.payment_term_days = term_days
        account.approved_by = approver.staff_user_id
        account.approved_at = clock.today()
    account.credit_limit = limit
    account.approval_notes = notes
    request.approved_limit = limit
    request.approved_term_days = term_days
    _request_close(request, account, before, approver, state="approved", notes=notes)
    return request


@atomic
def credit_reject(*, request_id: uuid.UUID, approver: StaffUser, notes: str) -> CreditRequest:
    """Reject a pending request with notes (never one's own); a new line's account is cancelled."""
    request, account = _pending_for_decision(request_id, approver)
    _within_approval_level(request.requested_limit or request.write_off_amount, approver)
    before = _snapshot(account, request)
    if request.kind == "new_line":
        account.status = "cancelled"
        account.approval_notes = notes
    _request_close(request, account, before, approver, state="rejected", notes=notes)
    return request


def credit_decide_many(
    *, request_ids: list[uuid.UUID], approve: bool, notes: str | None, approver: StaffUser
) -> tuple[list[CreditRequest], list[tuple[str, str]]]:
    """Decide several requests, each in its own transaction (four-eyes, levels and audit apply
    to every one): approvals at the requested values. Returns the decided requests and, for the
    others, (customer name, reason)."""
    decided, refusals = [], []
    for request_id in request_ids:
        try:
            if approve:
                decided.append(
                    credit_approve(
                        request_id=request_id,
                        approver=approver,
                        limit=None,
                        term_days=None,
                        notes=notes,
                    )
                )
            else:
                decided.append(credit_reject(request_id=request_id, approver=approver, notes=notes))
        except LookupError:
            refusals.append(("Solicitud desconocida", "no existe"))
        except CreditError as error:
            refusals.append((_request_customer_name(request_id), str(error)))
    return decided, refusals


def _request_customer_name(request_id: uuid.UUID) -> str:
    return db.session.scalar(
        sa.select(Customer.full_name)
        .join(CreditAccount, CreditAccount.customer_id == Customer.customer_id)
        .join(CreditRequest, CreditRequest.credit_account_id == CreditAccount.credit_account_id)
        .where(CreditRequest.credit_request_id == request_id)
    )


def _request_close(request, account, before, approver, *, state: str, notes: str | None) -> None:
    """Record the decision on the request and audit it (the action names the request's kind)."""
    request.state = state
    request.decision_notes = notes
    request.decided_by = approver.staff_user_id
    request.decided_at = sa.func.now()
    db.session.flush()
    action = f"credit.{state}" if request.kind == "new_line" else f"credit.{request.kind}_{state}"
    _audit_account(action, account, before, approver, request=request)


@atomic
def credit_decisions_seen(*, requester: StaffUser) -> set[uuid.UUID]:
    """The requester saw the decisions on their requests ("Mis solicitudes"); the new ones."""
    seen = db.session.scalars(
        sa.update(CreditRequest)
        .where(
            CreditRequest.requested_by == requester.staff_user_id,
            CreditRequest.state != "pending",
            CreditRequest.decision_seen_at.is_(None),
        )
        .values(decision_seen_at=sa.func.now())
        .returning(CreditRequest.credit_request_id)
        .execution_options(synchronize_session=False)
    ).all()
    if seen:
        audit_record(
            action="credit.decisions_seen",
            entity_type="staff_user",
            entity_id=requester.staff_user_id,
            after={"requests": seen},
            actor=requester,
        )
    return set(seen)


def _not_the_requester(account: CreditAccount, actor: StaffUser) -> None:
    if account_requester(account.credit_account_id) == actor.staff_user_id:
        raise CreditError(
            "Usted solicitó esta cuenta: otro aprobador debe suspenderla, reactivarla "
            "o cambiar su límite (doble control)."
        )


def _suspend(account: CreditAccount, *, reason: str, actor: Actor) -> None:
    if account.status != "approved":
        raise CreditError("Solo una cuenta aprobada puede suspenderse.")
    before = _snapshot(account)
    account.status = "suspended"
    account.suspended_at = sa.func.now()
    account.suspension_reason = reason
    db.session.flush()
    _audit_account("credit.suspended", account, before, actor)


@atomic
def credit_suspend(*, account_id: uuid.UUID, reason: str, actor: StaffUser) -> CreditAccount:
    """Suspend an approved account with a reason (not by its own requester)."""
    account = _account_locked(account_id)
    _not_the_requester(account, actor)
    _suspend(account, reason=reason, actor=actor)
    return account


@atomic
def credit_reactivate(*, account_id: uuid.UUID, notes: str, actor: StaffUser) -> CreditAccount:
    """Reactivate a suspended account (not by its own requester)."""
    account = _account_locked(account_id)
    _not_the_requester(account, actor)
    if account.status != "suspended":
        raise CreditError("Solo una cuenta suspendida puede reactivarse.")
    before = _snapshot(account)
    account.status = "approved"
    account.suspended_at = None
    account.suspension_reason = None
    account.approval_notes = notes
    db.session.flush()
    _audit_account("credit.reactivated", account, before, actor)
    return account


@atomic
def credit_limit_decrease(
    *, account_id: uuid.UUID, limit: Decimal, reason: str, actor: StaffUser
) -> CreditAccount:
    """Lower the limit at once (never below what is used); an increase is a request."""
    account = _account_locked(account_id)
    _not_the_requester(account, actor)
    if account.status not in ("approved", "suspended"):
        raise CreditError("Solo se cambia el límite de una cuenta aprobada o suspendida.")
    if limit > account.credit_limit:
        raise CreditError(
            "Un aumento de límite es una solicitud que decide otro aprobador: "
            "use «Solicitar aumento».",
            "credit_limit",
        )
    if limit < account.credit_used:
        raise CreditError(
            f"El límite no puede ser menor que lo usado ({money(account.credit_used)}).",
            "credit_limit",
        )
    before = _snapshot(account)
    account.credit_limit = limit
    account.approval_notes = reason
    db.session.flush()
    _audit_account("credit.limit_changed", account, before, actor)
    return account


@atomic
def credit_close(*, account_id: uuid.UUID, reason: str, actor: StaffUser) -> CreditAccount:
    """Close an account with nothing owed (no new charges; reopening is a new request)."""
    account = _account_locked(account_id)
    _not_the_requester(account, actor)
    if account.status not in ("approved", "suspended"):
        raise CreditError("Solo se cierra una cuenta aprobada o suspendida.")
    if account.credit_used > 0:
        raise CreditError(
            f"La cuenta tiene saldo ({money(account.credit_used)}): cóbrelo o solicite su "
            "castigo antes de cerrarla."
        )
    _no_pending_request(account_id)
    before = _snapshot(account)
    _close(account, reason=reason, actor=actor)
    _audit_account("credit.closed", account, before, actor)
    return account


def _close(account: CreditAccount, *, reason: str, actor: StaffUser) -> None:
    account.status = "closed"
    account.closed_at = sa.func.now()
    account.closed_by = actor.staff_user_id
    account.closure_reason = reason
    account.suspended_at = account.suspension_reason = None
    db.session.flush()


@atomic
def credit_write_off_request(
    *, account_id: uuid.UUID, reason: str, requester: StaffUser
) -> CreditRequest:
    """Ask to write off the account's whole balance; a second approver decides."""
    account = _account_locked(account_id)
    if account.status not in ("approved", "suspended"):
        raise CreditError("Solo se castiga el saldo de una cuenta aprobada o suspendida.")
    if account.credit_used <= 0:
        raise CreditError("La cuenta no tiene saldo que castigar: puede cerrarla.")
    _no_pending_request(account_id)
    request = CreditRequest(
        credit_account_id=account_id,
        kind="write_off",
        write_off_amount=account.credit_used,
        reason=reason,
        requested_by=requester.staff_user_id,
    )
    db.session.add(request)
    db.session.flush()
    _audit_account(
        "credit.write_off_requested", account, _snapshot(account), requester, request=request
    )
    return request


def _write_off_post(request, account, approver: StaffUser, *, notes: str | None) -> None:
    """The approved write-off: a ledger entry of its own, allocated FIFO like a payment (never
    counted as one); the charges it settles are written off and the account closes."""
    if account.credit_used != request.write_off_amount:
        raise CreditError(
            f"El saldo cambió desde la solicitud ({money(request.write_off_amount)} → "
            f"{money(account.credit_used)}): rechácela y solicite el castigo de nuevo."
        )
    _within_approval_level(request.write_off_amount, approver)
    before = _snapshot(account, request)
    entry = CreditPayment(
        credit_account_id=account.credit_account_id,
        kind="write_off",
        amount=request.write_off_amount,
        payment_date=clock.today(),
        idempotency_key=request.credit_request_id,
        created_by=approver.staff_user_id,
    )
    db.session.add(entry)
    db.session.flush()
    parameters = {
        "org": current_organization_id(),
        "payment_id": entry.payment_id,
        "account_id": account.credit_account_id,
        "amount": entry.amount,
    }
    db.session.execute(_ALLOCATE_FIFO, parameters)
    db.session.execute(_MARK_SETTLED.bindparams(status="written_off"), parameters)
    account.credit_used = Decimal("0.00")
    _close(account, reason=f"Saldo castigado: {request.reason}", actor=approver)
    _request_close(request, account, before, approver, state="approved", notes=notes)


# --- usages --------------------------------------------------------------------------------


def overdue_exists(account_id):
    """SQL: the account has overdue usages (the overdue hold)."""
    return sa.exists().where(
        CreditUsage.credit_account_id == account_id, CreditUsage.status == "overdue"
    )


def _refusal(account_id: uuid.UUID, amount: Decimal) -> CreditError:
    """Why a charge was refused, with the stable code the API answers (read afresh)."""
    db.session.expire_all()  # rows loaded before the refused UPDATE may be stale by now
    account = account_get(account_id)
    if account is None:
        raise LookupError(account_id)
    customer = db.session.scalar(
        sa.select(Customer).where(Customer.customer_id == account.customer_id)
    )
    if customer.status == "blocked":
        return CreditError(
            "Cliente bloqueado: no puede recibir nuevos cargos.", "amount", "customer_blocked"
        )
    if customer.status != "active":
        return CreditError("El cliente está inactivo.", "amount", "customer_inactive")
    if account.status != "approved":
        return CreditError(
            f"La cuenta de crédito está {ACCOUNT_STATUSES[account.status].lower()}.",
            "amount",
            "account_suspended" if account.status == "suspended" else "account_not_approved",
        )
    if db.session.scalar(sa.select(overdue_exists(account_id))):
        return CreditError(
            "Retención por mora: la cuenta tiene cargos vencidos sin pagar.",
            "amount",
            "overdue_hold",
        )
    return CreditError(
        f"Crédito disponible insuficiente: disponible {money(account.credit_available)}, "
        f"solicitado {money(amount)}.",
        "amount",
        "insufficient_credit",
    )


@atomic
def usage_charge(
    *,
    account_id: uuid.UUID,
    order_id: uuid.UUID,
    amount: Decimal,
    actor: Actor | None,
    order_number: str | None = None,
) -> tuple[CreditUsage, bool]:
    """Charge an order to the account once; a retry returns the existing usage (created=False).

    One statement checks the order, charges the account by a conditional UPDATE (concurrent
    charges serialise on the account row and re-check it) and inserts the usage from it; a
    refusal writes nothing, so a caller's own unit of work (e.g. the API's idempotency record)
    can keep the refusal as its answer.
    """
    row = db.session.execute(
        _CHARGE,
        {
            "tenant": current_organization_id(),
            "new_usage_id": uuid.uuid4(),
            "account_id": account_id,
            "order_id": order_id,
            "amount": amount,
            "actor_id": actor.staff_user_id if actor else None,
            "today": clock.today(),
        },
    ).one()
    if row.usage_id is None and row.credit_used is not None:
        # The same order was charged by a transaction that committed after this statement's
        # snapshot (its insert conflicted): give back what was just taken, under the row lock.
        db.session.execute(
            sa.update(CreditAccount)
            .where(CreditAccount.credit_account_id == account_id)
            .values(credit_used=CreditAccount.credit_used - amount)
            .execution_options(synchronize_session=False)
        )
    if row.usage_id is None:
        existing = db.session.scalar(sa.select(CreditUsage).where(CreditUsage.order_id == order_id))
        if existing is None:
            raise _refusal(account_id, amount)
        if existing.credit_account_id != account_id or existing.amount != amount:
            raise CreditError(
                "Esta orden ya tiene un cargo registrado por otro monto o en otra cuenta.",
                "order_id",
                "order_already_charged",
            )
        return existing, False
    usage = _loaded(CreditUsage, {column: row._mapping[column] for column in _USAGE_COLUMNS})
    account = db.session.identity_map.get(
        identity_key(CreditAccount, (account_id, current_organization_id()))
    )
    if account is not None:  # what the caller holds shows the new standing without a re-read
        for column in ("credit_used", "credit_available", "updated_at"):
            set_committed_value(account, column, row._mapping[column])
    audit_record(
        action="credit.usage_charged",
        entity_type="credit_account",
        entity_id=account_id,
        after={
            "usage_id": usage.usage_id,
            "order_id": order_id,
            "amount": amount,
            "due_date": usage.due_date,
            "credit_used": row.credit_used,
        }
        | ({"order_number": order_number} if order_number else {}),
        actor=actor,
    )
    return usage, True


_USAGE_COLUMNS = tuple(column.key for column in CreditUsage.__table__.columns)


def _charge_statement():
    """SQL: charge the account if the order is new and the account may take it; insert the
    usage from the charged row. Returns the usage's columns and the account's new standing
    (all NULL on a refusal or a repeated order; credit_used alone when the insert conflicted).

    Built once with bound parameters, so each charge reuses its compiled form. The parameter
    names are no column names of credit_accounts (Core would add those to the UPDATE's SET).
    """
    accounts, usages = CreditAccount.__table__, CreditUsage.__table__
    account_id, amount = sa.bindparam("account_id"), sa.bindparam("amount", type_=sa.Numeric)
    order_id = sa.bindparam("order_id")
    charged = (
        sa.update(accounts)
        .where(
            accounts.c.credit_account_id == account_id,
            accounts.c.status == "approved",
            accounts.c.credit_used + amount <= accounts.c.credit_limit,
            ~overdue_exists(account_id),
            ~sa.exists().where(usages.c.order_id == order_id),
            sa.exists().where(
                Customer.customer_id == accounts.c.customer_id, Customer.status == "active"
            ),
        )
        .values(credit_used=accounts.c.credit_used + amount)
        .returning(
            accounts.c.payment_term_days,
            accounts.c.credit_used,
            accounts.c.credit_available,
            accounts.c.updated_at,
        )
        .cte("charged")
    )
    values = {
        "organization_id": sa.bindparam("tenant"),
        "usage_id": sa.bindparam("new_usage_id"),
        "credit_account_id": account_id,
        "order_id": order_id,
        "amount": amount,
        "status": sa.literal("pending"),
        "created_by": sa.bindparam("actor_id"),
        "due_date": sa.bindparam("today", type_=sa.Date) + charged.c.payment_term_days,
    }
    inserted = (
        pg_insert(usages)
        .from_select(
            list(values),
            sa.select(
                *(
                    sa.type_coerce(value, usages.c[column].type).label(column)
                    for column, value in values.items()
                )
            ).select_from(charged),
        )
        .on_conflict_do_nothing(constraint="unique_org_order")
        .returning(*usages.c)
        .cte("inserted")
    )
    # One row whatever happened: the CTEs hang off a single-row anchor (a plain subquery:
    # a VALUES clause would keep the statement out of the compiled cache).
    anchor = sa.select(sa.literal_column("1").label("one")).subquery("anchor")
    return sa.select(
        *(inserted.c[column] for column in _USAGE_COLUMNS),
        charged.c.credit_used,
        charged.c.credit_available,
        charged.c.updated_at,
    ).select_from(anchor.outerjoin(charged, sa.true()).outerjoin(inserted, sa.true()))


_CHARGE = _charge_statement()


def _loaded(model, values: dict):
    """A persistent, clean instance of a row this transaction just wrote (no re-read)."""
    instance = model(**values)
    make_transient_to_detached(instance)
    return db.session.merge(instance, load=False)


def usage_get(usage_id: uuid.UUID) -> CreditUsage | None:
    """One usage of the current organization."""
    return db.session.scalar(sa.select(CreditUsage).where(CreditUsage.usage_id == usage_id))


def usage_void(
    *, usage_id: uuid.UUID, account_id: uuid.UUID, statuses: tuple[str, ...], refusal: str
) -> Decimal:
    """Void the account's usage in one of `statuses` with nothing paid against it (it becomes
    cancelled) and give its credit back; its amount. CreditError(refusal) otherwise. Part of the
    caller's unit of work, which audits."""
    _account_locked(account_id)
    still_applied = (
        sa.select(sa.func.coalesce(sa.func.sum(CreditPaymentAllocation.amount), 0))
        .where(CreditPaymentAllocation.usage_id == CreditUsage.usage_id)
        .scalar_subquery()
    )
    voided = db.session.execute(
        sa.update(CreditUsage)
        .where(
            CreditUsage.usage_id == usage_id,
            CreditUsage.credit_account_id == account_id,
            CreditUsage.status.in_(statuses),
            still_applied == 0,
        )
        .values(status="cancelled", cancelled_at=sa.func.now())
        .returning(CreditUsage.amount)
        .execution_options(synchronize_session=False)
    ).scalar()
    if voided is None:
        raise CreditError(refusal)
    db.session.execute(
        sa.update(CreditAccount)
        .where(CreditAccount.credit_account_id == account_id)
        .values(credit_used=CreditAccount.credit_used - voided)
        .execution_options(synchronize_session=False)
    )
    db.session.expire_all()
    return voided


@atomic
def usage_cancel(*, usage_id: uuid.UUID, actor: Actor | None) -> CreditUsage:
    """Cancel a pending order charge nothing was paid against; the credit comes back."""
    usage = usage_get(usage_id)
    if usage is None:
        raise LookupError(usage_id)
    if usage.kind != "order":
        raise CreditError("Un recargo por mora no se anula: un aprobador puede condonarlo.")
    cancelled = usage_void(
        usage_id=usage_id,
        account_id=usage.credit_account_id,
        statuses=("pending",),
        refusal="Solo se anula un cargo pendiente sin pagos aplicados.",
    )
    audit_record(
        action="credit.usage_cancelled",
        entity_type="credit_account",
        entity_id=usage.credit_account_id,
        before={"usage_id": usage_id, "status": "pending"},
        after={"usage_id": usage_id, "status": "cancelled", "amount": cancelled},
        actor=actor,
    )
    return usage_get(usage_id)


@atomic
def usages_cancel_for_orders(*, order_ids: list[uuid.UUID], actor: Actor) -> int:
    """Cancel the pending charges of cancelled orders, each by usage_cancel; how many were.

    A charge that can no longer be cancelled (something was paid against it) stays as it is.
    """
    pending = list(
        db.session.scalars(
            sa.select(CreditUsage.usage_id).where(
                CreditUsage.order_id.in_(order_ids), CreditUsage.status == "pending"
            )
        )
    )
    cancelled = 0
    for usage_id in pending:
        try:
            with db.session.begin_nested():
                usage_cancel(usage_id=usage_id, actor=actor)
        except CreditError:
            log.warning("cancelled order's charge kept", extra={"usage_id": str(usage_id)})
        else:
            cancelled += 1
    return cancelled


# --- payments ------------------------------------------------------------------------------

_ALLOCATE_FIFO = sa.text(
    """
    INSERT INTO credit_payment_allocations (organization_id, payment_id, usage_id, amount)
    SELECT :org, :payment_id, usage_id, least(outstanding, :amount - (running - outstanding))
    FROM (
        SELECT u.usage_id, u.amount - coalesce(a.allocated, 0) AS outstanding,
               sum(u.amount - coalesce(a.allocated, 0))
                   OVER (ORDER BY u.due_date, u.created_at, u.usage_id) AS running
        FROM credit_usages u
        LEFT JOIN (
            SELECT usage_id, sum(amount) AS allocated FROM credit_payment_allocations
            GROUP BY usage_id
        ) a ON a.usage_id = u.usage_id
        WHERE u.credit_account_id = :account_id AND u.status IN ('pending', 'overdue')
    ) AS queue
    WHERE outstanding > 0 AND running - outstanding < :amount
    RETURNING usage_id, amount
    """
)
# Usages a payment (or a write-off) covered in full: `paid` with paid_at, or `written_off`.
_MARK_SETTLED = sa.text(
    """
    UPDATE credit_usages u
    SET status = CAST(:status AS text),
        paid_at = CASE WHEN CAST(:status AS text) = 'paid' THEN now() END
    WHERE u.credit_account_id = :account_id AND u.status IN ('pending', 'overdue')
      AND u.amount <= (SELECT coalesce(sum(a.amount), 0) FROM credit_payment_allocations a
                       WHERE a.usage_id = u.usage_id)
    """
)


def payment_get(payment_id: uuid.UUID) -> CreditPayment | None:
    """One payment of the current organization."""
    return db.session.scalar(sa.select(CreditPayment).where(CreditPayment.payment_id == payment_id))


@atomic
def payment_record(
    *,
    account_id: uuid.UUID,
    amount: Decimal,
    method: str,
    reference: str | None,
    payment_date: date,
    key: uuid.UUID,
    actor: StaffUser | None,
) -> tuple[CreditPayment, bool]:
    """Record a payment once per idempotency key and allocate it FIFO; created=False on a retry."""
    account = _account_locked(account_id)  # payments of one account serialise here
    existing = db.session.scalar(
        sa.select(CreditPayment).where(CreditPayment.idempotency_key == key)
    )
    if existing is not None:
        if existing.credit_account_id != account_id or existing.amount != amount:
            raise CreditError(
                "Este formulario ya registró un pago con otros datos. Recargue la página.", "amount"
            )
        return existing, False
    if payment_date > clock.today():
        raise CreditError("La fecha de pago no puede estar en el futuro.", "payment_date")
    if payment_date < account.created_at.date() - timedelta(days=1):
        raise CreditError(
            "La fecha de pago es anterior a la apertura de la cuenta.", "payment_date"
        )
    if amount > account.credit_used:
        raise CreditError(
            f"Pago mayor que lo adeudado: el saldo es {money(account.credit_used)}.", "amount"
        )
    payment = CreditPayment(
        credit_account_id=account_id,
        amount=amount,
        payment_method=method,
        payment_reference=reference,
        payment_date=payment_date,
        idempotency_key=key,
        created_by=actor.staff_user_id if actor else None,
    )
    db.session.add(payment)
    db.session.flush()
    parameters = {
        "org": current_organization_id(),
        "payment_id": payment.payment_id,
        "account_id": account_id,
        "amount": amount,
    }
    allocations = db.session.execute(_ALLOCATE_FIFO, parameters).all()
    db.session.execute(_MARK_SETTLED.bindparams(status="paid"), parameters)
    db.session.execute(
        sa.update(CreditAccount)
        .where(CreditAccount.credit_account_id == account_id)
        .values(credit_used=CreditAccount.credit_used - amount)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(account)
    audit_record(
        action="credit.payment_recorded",
        entity_type="credit_account",
        entity_id=account_id,
        after={
            "payment_id": payment.payment_id,
            "amount": amount,
            "method": method,
            "allocations": [
                {"usage_id": row.usage_id, "amount": row.amount} for row in allocations
            ],
        },
        actor=actor,
    )
    return payment, True


@atomic
def payment_reverse(*, payment_id: uuid.UUID, reason: str, actor: StaffUser) -> CreditPayment:
    """Reverse a payment (e.g. a bounced check): what it paid is owed again.

    The payment's allocations stay; one negative allocation per original records the undoing.
    """
    payment = payment_get(payment_id)
    if payment is None:
        raise LookupError(payment_id)
    account = _account_locked(payment.credit_account_id)
    db.session.refresh(payment)
    if payment.kind != "payment":
        raise CreditError("Un castigo de saldo no se revierte.")
    if payment.reversed_at is not None:
        raise CreditError("Este pago ya fue revertido.")
    if account.credit_used + payment.amount > account.credit_limit:
        raise CreditError(
            "Revertir este pago superaría el límite de crédito; ajuste el límite primero."
        )
    undone = db.session.execute(
        sa.insert(CreditPaymentAllocation)
        .from_select(
            [
                "allocation_id",
                "organization_id",
                "payment_id",
                "usage_id",
                "amount",
                "reverses_allocation_id",
            ],
            sa.select(
                sa.func.gen_random_uuid(),
                CreditPaymentAllocation.organization_id,
                CreditPaymentAllocation.payment_id,
                CreditPaymentAllocation.usage_id,
                -CreditPaymentAllocation.amount,
                CreditPaymentAllocation.allocation_id,
            ).where(
                CreditPaymentAllocation.payment_id == payment_id,
                CreditPaymentAllocation.reverses_allocation_id.is_(None),
            ),
        )
        .returning(CreditPaymentAllocation.usage_id, CreditPaymentAllocation.amount)
    ).all()
    db.session.execute(
        sa.update(CreditUsage)
        .where(CreditUsage.usage_id.in_([row.usage_id for row in undone]))
        .where(CreditUsage.status == "paid")
        .values(
            status=sa.case((CreditUsage.due_date < clock.today(), "overdue"), else_="pending"),
            paid_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(CreditAccount)
        .where(CreditAccount.credit_account_id == account.credit_account_id)
        .values(credit_used=CreditAccount.credit_used + payment.amount)
        .execution_options(synchronize_session=False)
    )
    payment.reversed_at = sa.func.now()
    payment.reversed_by = actor.staff_user_id
    payment.reversal_reason = reason
    db.session.flush()
    db.session.expire_all()
    audit_record(
        action="credit.payment_reversed",
        entity_type="credit_account",
        entity_id=account.credit_account_id,
        before={"payment_id": payment_id},
        after={
            "payment_id": payment_id,
            "reversal_reason": reason,
            "allocations": [{"usage_id": row.usage_id, "amount": row.amount} for row in undone],
        },
        actor=actor,
    )
    return payment_get(payment_id)


# --- overdue -------------------------------------------------------------------------------


@atomic
def usages_mark_overdue(*, today: date | None = None, suspend_after_days: int = 30) -> dict:
    """Daily: pending usages past due become overdue; accounts overdue too long are suspended."""
    today = today or clock.today()
    marked = db.session.execute(
        sa.update(CreditUsage)
        .where(CreditUsage.status == "pending", CreditUsage.due_date < today)
        .values(status="overdue")
        .execution_options(synchronize_session=False)
    ).rowcount
    too_late = today - timedelta(days=suspend_after_days)
    accounts = list(
        db.session.scalars(
            sa.select(CreditAccount)
            .where(
                CreditAccount.status == "approved",
                sa.exists().where(
                    CreditUsage.credit_account_id == CreditAccount.credit_account_id,
                    CreditUsage.status == "overdue",
                    CreditUsage.due_date < too_late,
                ),
            )
            .with_for_update()
        )
    )
    for account in accounts:
        _suspend(
            account,
            reason=f"Suspensión automática: cargos vencidos hace más de {suspend_after_days} días.",
            actor=SYSTEM_ACTOR,
        )
    return {"marked_overdue": marked, "suspended": len(accounts)}


@atomic
def aging_refresh_stale() -> int:
    """Daily: move the aging row of every account no ledger write touched today to today."""
    return db.session.scalar(sa.text("SELECT credit_aging_refresh_stale()"))


@atomic
def aging_months_record(*, today: date | None = None) -> int:
    """Nightly, after the aging rows moved to today: this month's row from today's totals, and
    each earlier month of the last year that has no row computed at its end (a new install, a
    missed night) from the ledger as of its last day. Returns the rows written."""
    today = today or clock.today()
    first_charge = db.session.scalar(sa.select(sa.func.min(CreditUsage.created_at)))
    if first_charge is None:
        return 0
    first_day = first_charge.astimezone(clock.BUSINESS_ZONE).date()
    months = history_months(today)
    computed = dict(
        db.session.execute(
            sa.select(CreditAgingMonth.month, CreditAgingMonth.computed_on).where(
                CreditAgingMonth.month >= months[0]
            )
        ).all()
    )
    rows = []
    for month in months:
        end = month_end(month, today)
        if end < first_day or (month < months[-1] and month in computed and computed[month] >= end):
            continue
        totals = aging_summary(today=end)
        rows.append({"month": month, "computed_on": end} | {key: totals[key] for key in AGING_KEYS})
    if rows:
        statement = pg_insert(CreditAgingMonth).values(rows)
        db.session.execute(
            statement.on_conflict_do_update(
                index_elements=["organization_id", "month"],
                set_={key: statement.excluded[key] for key in ["computed_on", *AGING_KEYS]},
            )
        )
    return len(rows)
