"""Credit pages: approval queue, account ledger (charges, payments), statement, aging."""

import uuid
from decimal import Decimal

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal import clock
from portal.auth.models import ROLES
from portal.credit import bp
from portal.credit.forms import (
    ApproveForm,
    CreditRequestForm,
    DateRangeForm,
    IncreaseForm,
    LimitForm,
    PaymentForm,
    ReactivateForm,
    RejectForm,
    ReversalForm,
    SuspendForm,
    UsageForm,
)
from portal.credit.reports import (
    AGING_BUCKETS,
    aging_page,
    aging_rows,
    aging_summary,
    statement_lines,
)
from portal.credit.services import (
    CreditError,
    account_get,
    account_payments,
    account_usages,
    credit_approve,
    credit_increase_request,
    credit_limit_decrease,
    credit_queue,
    credit_queue_count,
    credit_reactivate,
    credit_reject,
    credit_request,
    credit_request_pending,
    credit_suspend,
    payment_get,
    payment_record,
    payment_reverse,
    usage_cancel,
    usage_charge,
    usage_get,
)
from portal.csv_export import csv_response
from portal.customers.services import customer_get
from portal.db import keep_scope
from portal.extensions import db
from portal.htmx import is_htmx
from portal.security import role_required
from portal.validation import form_error

VIEWERS = tuple(ROLES)
REQUESTERS = ("branch_staff", "credit_staff")
CREDIT_STAFF = ("credit_staff",)
APPROVERS = ("credit_approver",)
REPORT_READERS = ("credit_staff", "credit_approver", "org_admin")
INVALID = 422


def _account_or_404(account_id: uuid.UUID):
    account = account_get(account_id)
    if account is None:
        abort(404)
    return account


# --- requests and the approval queue -------------------------------------------------------


@bp.route("/request/<uuid:customer_id>", methods=["GET", "POST"])
@role_required(*REQUESTERS)
def request_credit(customer_id: uuid.UUID):
    """Request a credit account for a customer; submitting the same request twice is harmless."""
    customer = customer_get(customer_id)
    if customer is None:
        abort(404)
    form = CreditRequestForm()
    if form.validate_on_submit():
        try:
            _, created = credit_request(
                customer_id=customer_id,
                limit=form.requested_limit.data,
                term_days=form.requested_term_days.data,
                notes=form.request_notes.data,
                requester=current_user,
            )
        except CreditError as error:
            form_error(form, str(error), error.field)
        else:
            flash(
                "Solicitud de crédito enviada a aprobación."
                if created
                else "Esta solicitud ya estaba registrada y sigue pendiente de aprobación.",
                "success",
            )
            return redirect(url_for("customers.detail", customer_id=customer_id))
    status = INVALID if form.is_submitted() else 200
    return render_template("credit/request.html", form=form, customer=customer), status


@bp.get("/queue")
@role_required(*APPROVERS)
def queue():
    """Pending requests, oldest first, with the facts to decide on."""
    return render_template("credit/queue.html", items=credit_queue())


def _decision_response(request_id: uuid.UUID, message: str):
    if is_htmx():
        # The row leaves the queue; the badge in the navigation updates out of band.
        return render_template(
            "credit/_decided.html",
            request_id=request_id,
            message=message,
            pending=credit_queue_count(),
        )
    flash(message, "success")
    return redirect(url_for("credit.queue"))


def _queue_refusal(request_id: uuid.UUID, message: str):
    if is_htmx():
        # Keep the row and its forms; show the reason inside it.
        headers = {"HX-Retarget": f"#refusal-{request_id}", "HX-Reswap": "innerHTML"}
        return render_template("credit/_refusal.html", message=message), INVALID, headers
    flash(message, "error")
    return redirect(url_for("credit.queue"))


def _form_errors(form) -> str:
    return " ".join(error for errors in form.errors.values() for error in errors)


@bp.post("/requests/<uuid:request_id>/approve")
@role_required(*APPROVERS)
def approve(request_id: uuid.UUID):
    """Approve a request (never one's own)."""
    form = ApproveForm()
    if not form.validate():
        return _queue_refusal(request_id, _form_errors(form))
    try:
        credit_approve(
            request_id=request_id,
            approver=current_user,
            limit=form.credit_limit.data,
            term_days=form.payment_term_days.data,
            notes=form.approval_notes.data,
        )
    except LookupError:
        abort(404)
    except CreditError as error:
        return _queue_refusal(request_id, str(error))
    return _decision_response(request_id, "Crédito aprobado.")


@bp.post("/requests/<uuid:request_id>/reject")
@role_required(*APPROVERS)
def reject(request_id: uuid.UUID):
    """Reject a request with notes (never one's own)."""
    form = RejectForm()
    if not form.validate():
        return _queue_refusal(request_id, _form_errors(form))
    try:
        credit_reject(request_id=request_id, approver=current_user, notes=form.approval_notes.data)
    except LookupError:
        abort(404)
    except CreditError as error:
        return _queue_refusal(request_id, str(error))
    return _decision_response(request_id, "Solicitud rechazada.")


# --- the account ledger --------------------------------------------------------------------


def _ledger_context(account, **forms) -> dict:
    return {
        "account": account,
        "customer": customer_get(account.customer_id),
        "usages": account_usages(account.credit_account_id),
        "payments": account_payments(account.credit_account_id),
        "usage_form": forms.get("usage_form") or UsageForm(formdata=None),
        "payment_form": forms.get("payment_form")
        or PaymentForm(formdata=None, idempotency_key=uuid.uuid4(), payment_date=clock.today()),
        "message": forms.get("message"),
    }


def _ledger_response(account, status=200, **forms):
    template = "credit/_ledger.html" if is_htmx() else "credit/account.html"
    context = _ledger_context(account, **forms)
    context |= {
        "failed": status >= 400,
        "suspend_form": SuspendForm(formdata=None),
        "reactivate_form": ReactivateForm(formdata=None),
        "limit_form": LimitForm(formdata=None),
        "increase_form": IncreaseForm(formdata=None),
        "pending_request": credit_request_pending(account.credit_account_id),
        "reversal_form": ReversalForm(formdata=None),
    }
    return render_template(template, **context), status


@bp.get("/accounts/<uuid:account_id>")
@role_required(*VIEWERS)
def account(account_id: uuid.UUID):
    """The account: standing, usages, payments with allocations, and the forms a role may use."""
    return _ledger_response(_account_or_404(account_id))


@bp.post("/accounts/<uuid:account_id>/usages")
@role_required(*CREDIT_STAFF)
def charge(account_id: uuid.UUID):
    """Charge an order to the account (a retry of the same order charges nothing more)."""
    account = _account_or_404(account_id)
    form = UsageForm()
    if not form.validate_on_submit():
        return _ledger_response(account, INVALID, usage_form=form)
    try:
        _, created = usage_charge(
            account_id=account_id,
            order_id=form.order_id.data,
            amount=form.amount.data,
            actor=current_user,
        )
    except CreditError as error:
        db.session.rollback()
        form_error(form, str(error), error.field)
        return _ledger_response(_account_or_404(account_id), INVALID, usage_form=form)
    db.session.commit()
    message = (
        "Cargo registrado." if created else "Esta orden ya estaba cargada; no se cobró dos veces."
    )
    return _after_change(account_id, message)


def _after_change(account_id: uuid.UUID, message: str):
    account = _account_or_404(account_id)
    if is_htmx():
        return _ledger_response(account, message=message)
    flash(message, "success")
    return redirect(url_for("credit.account", account_id=account_id), 303)


@bp.post("/usages/<uuid:usage_id>/cancel")
@role_required(*CREDIT_STAFF)
def cancel_usage(usage_id: uuid.UUID):
    """Cancel a pending usage; its credit comes back."""
    usage = usage_get(usage_id)
    if usage is None:
        abort(404)
    try:
        usage_cancel(usage_id=usage_id)
    except CreditError as error:
        db.session.rollback()
        return _refused(usage.credit_account_id, str(error))
    db.session.commit()
    return _after_change(usage.credit_account_id, "Cargo anulado; el crédito quedó disponible.")


def _refused(account_id: uuid.UUID, message: str):
    if is_htmx():
        return _ledger_response(_account_or_404(account_id), INVALID, message=message)
    flash(message, "error")
    return redirect(url_for("credit.account", account_id=account_id), 303)


@bp.post("/accounts/<uuid:account_id>/payments")
@role_required(*CREDIT_STAFF)
def record_payment(account_id: uuid.UUID):
    """Record a payment, allocated to the oldest charges first; a double submit posts once."""
    account = _account_or_404(account_id)
    form = PaymentForm()
    if not form.validate_on_submit():
        return _ledger_response(account, INVALID, payment_form=form)
    try:
        _, created = payment_record(
            account_id=account_id,
            amount=form.amount.data,
            method=form.payment_method.data,
            reference=form.payment_reference.data,
            payment_date=form.payment_date.data,
            key=form.idempotency_key.data,
            actor=current_user,
        )
    except CreditError as error:
        db.session.rollback()
        form_error(form, str(error), error.field)
        return _ledger_response(_account_or_404(account_id), INVALID, payment_form=form)
    db.session.commit()
    return _after_change(
        account_id, "Pago registrado." if created else "Este pago ya estaba registrado."
    )


@bp.post("/payments/<uuid:payment_id>/reverse")
@role_required(*APPROVERS)
def reverse_payment(payment_id: uuid.UUID):
    """Reverse a payment (approvers only); what it paid is owed again."""
    payment = payment_get(payment_id)
    if payment is None:
        abort(404)
    form = ReversalForm()
    if not form.validate_on_submit():
        return _refused(payment.credit_account_id, "Indique el motivo de la reversión.")
    try:
        payment_reverse(payment_id=payment_id, reason=form.reversal_reason.data, actor=current_user)
    except CreditError as error:
        db.session.rollback()
        return _refused(payment.credit_account_id, str(error))
    db.session.commit()
    return _after_change(payment.credit_account_id, "Pago revertido.")


def _account_action(account_id: uuid.UUID, form, action, message: str):
    _account_or_404(account_id)
    if not form.validate_on_submit():
        return _refused(account_id, _form_errors(form))
    try:
        action()
    except CreditError as error:
        return _refused(account_id, str(error))
    return _after_change(account_id, message)


@bp.post("/accounts/<uuid:account_id>/suspend")
@role_required(*APPROVERS)
def suspend(account_id: uuid.UUID):
    """Suspend an approved account (not by its own requester)."""
    form = SuspendForm()
    return _account_action(
        account_id,
        form,
        lambda: credit_suspend(
            account_id=account_id, reason=form.suspension_reason.data, actor=current_user
        ),
        "Cuenta suspendida.",
    )


@bp.post("/accounts/<uuid:account_id>/reactivate")
@role_required(*APPROVERS)
def reactivate(account_id: uuid.UUID):
    """Reactivate a suspended account (not by its own requester)."""
    form = ReactivateForm()
    return _account_action(
        account_id,
        form,
        lambda: credit_reactivate(
            account_id=account_id, notes=form.approval_notes.data, actor=current_user
        ),
        "Cuenta reactivada.",
    )


@bp.post("/accounts/<uuid:account_id>/limit")
@role_required(*APPROVERS)
def change_limit(account_id: uuid.UUID):
    """Lower the credit limit at once; an increase is refused here (it is a request)."""
    form = LimitForm()
    return _account_action(
        account_id,
        form,
        lambda: credit_limit_decrease(
            account_id=account_id,
            limit=form.credit_limit.data,
            reason=form.approval_notes.data,
            actor=current_user,
        ),
        "Límite reducido.",
    )


@bp.post("/accounts/<uuid:account_id>/increase")
@role_required(*CREDIT_STAFF)
def request_increase(account_id: uuid.UUID):
    """Ask for a higher limit; it enters the approval queue for another approver."""
    form = IncreaseForm()
    return _account_action(
        account_id,
        form,
        lambda: credit_increase_request(
            account_id=account_id,
            limit=form.requested_limit.data,
            reason=form.reason.data,
            requester=current_user,
        ),
        "Solicitud de aumento enviada a aprobación.",
    )


# --- statement and aging -------------------------------------------------------------------


@bp.get("/accounts/<uuid:account_id>/statement")
@role_required(*REPORT_READERS)
def statement(account_id: uuid.UUID):
    """Usages, payments and allocations with running balance; printable or CSV."""
    account = _account_or_404(account_id)
    form = DateRangeForm(request.args)
    if not form.validate():
        abort(400)
    opening, lines, closing = statement_lines(account_id, start=form.start.data, end=form.end.data)
    if request.args.get("format") == "csv":
        rows = [["", "Saldo inicial", "", "", opening]] + [
            [line.on, line.description, line.charge or "", line.credit or "", line.balance]
            for line in lines
        ]
        return csv_response(
            f"estado-de-cuenta-{account_id}.csv",
            ["Fecha", "Detalle", "Cargo", "Abono", "Saldo"],
            rows,
        )
    return render_template(
        "credit/statement.html",
        account=account,
        customer=customer_get(account.customer_id),
        form=form,
        opening=opening,
        lines=lines,
        closing=closing,
    )


@bp.get("/aging")
@role_required(*REPORT_READERS)
def aging():
    """Outstanding credit by age: totals and chart, accounts largest overdue first; CSV too."""
    bucket = request.args.get("bucket") or None
    if bucket is not None and bucket not in dict(AGING_BUCKETS):
        abort(400)
    if request.args.get("format") == "csv":
        keys = [key for key, _ in AGING_BUCKETS]
        rows = (
            [row.name, *[getattr(row, key) for key in keys], row.total]
            for row in keep_scope(aging_rows(bucket=bucket))
        )
        return csv_response(
            "antiguedad-de-saldos.csv",
            ["Cliente", *[label for _, label in AGING_BUCKETS], "Total"],
            rows,
        )
    try:
        page = aging_page(bucket=bucket, cursor=request.args.get("after"))
    except ValueError:
        abort(400)
    context = {"page": page, "buckets": AGING_BUCKETS, "bucket": bucket}
    if request.args.get("after") and is_htmx():
        return render_template("credit/_aging_rows.html", **context)  # "Cargar más"
    totals = aging_summary()
    peak = max([totals[key] for key, _ in AGING_BUCKETS] + [Decimal(1)])
    return render_template(
        "credit/aging.html", totals=totals, peak=peak, today=clock.today(), **context
    )
