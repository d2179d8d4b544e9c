"""Credit pages: approval queue, account ledger (charges, payments), statement, aging."""

import uuid
from decimal import Decimal

from flask import abort, request, url_for
from flask_login import current_user

from portal import clock
from portal.auth.permissions import permission_required
from portal.credit import bp
from portal.credit.fees import late_fee_waive, late_fees_exemption_set
from portal.credit.forms import (
    AgingForm,
    ApproveForm,
    BulkDecisionForm,
    CloseForm,
    CreditRequestForm,
    DateRangeForm,
    FeeExemptionForm,
    FeeWaiverForm,
    IncreaseForm,
    LimitForm,
    PaymentForm,
    QueueFilterForm,
    ReactivateForm,
    RejectForm,
    ReversalForm,
    SuspendForm,
    UsageForm,
    WriteOffForm,
    statement_mail_form_blank,
)
from portal.credit.reports import (
    AGING_BUCKETS,
    aging_page,
    aging_rows,
    aging_summary,
    statement_lines,
)
from portal.credit.selectors import (
    QueueFilters,
    account_ledger,
    credit_queue,
    credit_queue_count,
    order_for_charge,
    order_suggestions,
    payment_receipt,
    queue_item,
    queue_requesters,
    requests_of,
    worst_bucket,
    written_off_total,
)
from portal.credit.services import (
    CreditError,
    account_get,
    credit_approve,
    credit_close,
    credit_decide_many,
    credit_decisions_seen,
    credit_increase_request,
    credit_limit_decrease,
    credit_reactivate,
    credit_reject,
    credit_request,
    credit_suspend,
    credit_write_off_request,
    payment_get,
    payment_record,
    payment_reverse,
    usage_cancel,
    usage_charge,
    usage_get,
)
from portal.credit.statements import STATEMENT_PARTIAL, statement_document
from portal.csv_export import csv_response
from portal.customers.services import customer_get
from portal.db import keep_scope
from portal.documents import document
from portal.htmx import INVALID, done, form_page, is_htmx, refused, render
from portal.money import money
from portal.settings.services import organization_settings_get
from portal.validation import choices, errors_text, form_error

FILTERS = ("sort", "kind", "min_amount", "max_amount", "requester")
APPROVED_MESSAGES = {
    "new_line": "Crédito aprobado.",
    "increase": "Aumento aprobado.",
    "write_off": "Castigo aprobado.",
}


def _ledger_or_404(account_id: uuid.UUID):
    ledger = account_ledger(account_id)
    if ledger is None:
        abort(404)
    return ledger


# --- requests and the approval queue -------------------------------------------------------


@bp.route("/request/<uuid:customer_id>", methods=["GET", "POST"])
@permission_required("credit.request")
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
            return done(
                "Solicitud de crédito enviada a aprobación."
                if created
                else "Esta solicitud ya estaba registrada y sigue pendiente de aprobación.",
                redirect_to=url_for("customers.detail", customer_id=customer_id),
                code=302,
            )
    status = INVALID if form.is_submitted() else 200
    return form_page("credit/request.html", form=form, customer=customer, status=status)


@bp.get("/mine")
@permission_required("credit.request")
def my_requests():
    """The user's own requests with their states and decisions; opening it marks them seen."""
    new = credit_decisions_seen(requester=current_user)
    return render("credit/mine.html", requests=requests_of(current_user.staff_user_id), new=new)


def _queue_filters(form: QueueFilterForm) -> QueueFilters:
    form.requester.choices = choices(
        {"": "Todos"} | {str(row.staff_user_id): row.full_name for row in queue_requesters()}
    )
    if not form.validate():
        return QueueFilters()
    return QueueFilters(
        sort=form.sort.data,
        kind=form.kind.data or None,
        min_amount=form.min_amount.data,
        max_amount=form.max_amount.data,
        requester=form.requester.data,
    )


def _queue_context(form: QueueFilterForm) -> dict:
    filters = _queue_filters(form)
    return {
        "items": credit_queue(filters),
        "filters": form,
        "filter_args": {key: value for key, value in request.args.items() if value},
        "approval_level": organization_settings_get().approval_level,
        "worst_bucket": worst_bucket,
    }


@bp.get("/queue")
@permission_required("credit.approve")
def queue():
    """Pending requests as a worklist: oldest first, sortable, filterable, decided in place."""
    form = QueueFilterForm(request.args)
    context = _queue_context(form)
    status = INVALID if form.errors else 200
    return render("credit/queue.html", "credit/_queue_table.html", status=status, **context)


@bp.get("/requests/<uuid:request_id>")
@permission_required("credit.approve")
def request_detail(request_id: uuid.UUID):
    """A pending request expanded: the decision forms prefilled with what was requested, the
    justification and the customer's recent activity."""
    item = queue_item(request_id)
    if item is None:
        abort(404)
    return render(
        "credit/decide.html",
        "credit/_queue_detail.html",
        item=item,
        customer=customer_get(item.customer_id),
        approve=ApproveForm(
            formdata=None,
            credit_limit=item.requested_limit,
            payment_term_days=item.requested_term_days,
        ),
        reject=RejectForm(formdata=None),
        approval_level=organization_settings_get().approval_level,
    )


def _decided(request_id: uuid.UUID, message: str):
    # The row leaves the queue; the badges and the live region update out of band.
    return done(
        message,
        redirect_to=url_for("credit.queue"),
        code=302,
        partial="credit/_decided.html",
        context=lambda: {"request_id": request_id, "pending": credit_queue_count()},
    )


def _not_decided(request_id: uuid.UUID, message: str):
    # Keep the row and its forms; show the reason inside it.
    return refused(
        message,
        redirect_to=url_for("credit.queue"),
        code=302,
        partial="credit/_refusal.html",
        headers={"HX-Retarget": f"#refusal-{request_id}", "HX-Reswap": "innerHTML"},
    )


def _decision_message(decided, verb: str) -> str:
    name = customer_get(account_get(decided.credit_account_id).customer_id).full_name
    return f"{verb} Cliente: {name}."


@bp.post("/requests/<uuid:request_id>/approve")
@permission_required("credit.approve")
def approve(request_id: uuid.UUID):
    """Approve a request (never one's own)."""
    form = ApproveForm()
    if not form.validate():
        return _not_decided(request_id, errors_text(form))
    try:
        decided = credit_approve(
            request_id=request_id,
            approver=current_user,
            limit=form.credit_limit.data,
            term_days=form.payment_term_days.data,
            notes=form.approval_notes.data,
        )
    except LookupError:
        abort(404)
    except CreditError as error:
        return _not_decided(request_id, str(error))
    return _decided(request_id, _decision_message(decided, APPROVED_MESSAGES[decided.kind]))


@bp.post("/requests/<uuid:request_id>/reject")
@permission_required("credit.approve")
def reject(request_id: uuid.UUID):
    """Reject a request with notes (never one's own)."""
    form = RejectForm()
    if not form.validate():
        return _not_decided(request_id, errors_text(form))
    try:
        decided = credit_reject(
            request_id=request_id, approver=current_user, notes=form.approval_notes.data
        )
    except LookupError:
        abort(404)
    except CreditError as error:
        return _not_decided(request_id, str(error))
    return _decided(request_id, _decision_message(decided, "Solicitud rechazada."))


@bp.post("/requests/bulk")
@permission_required("credit.approve")
def decide_many():
    """Approve at the requested values, or reject with one reason, each selected request on its
    own (four-eyes and the audit apply to every one); says which could not be decided."""
    form = BulkDecisionForm()
    back = url_for("credit.queue", **{k: v for k, v in request.form.items() if k in FILTERS})
    if not form.validate():
        return refused(errors_text(form), redirect_to=back, partial="credit/_bulk_result.html")
    decided, refusals = credit_decide_many(
        request_ids=form.request_ids.data,
        approve=form.decision.data == "approve",
        notes=form.approval_notes.data,
        approver=current_user,
    )
    verb = "aprobadas" if form.decision.data == "approve" else "rechazadas"
    message = f"{len(decided)} solicitudes {verb}."
    if refusals:
        message += " No se decidieron: " + "; ".join(
            f"{name} ({reason})" for name, reason in refusals
        )
    outcome = done if decided else refused
    return outcome(
        message,
        redirect_to=back,
        partial="credit/_bulk_result.html",
        context=lambda: {"decided": decided, "pending": credit_queue_count()},
    )


# --- the account ledger --------------------------------------------------------------------


def _ledger_context(account_id: uuid.UUID, *, failed: bool = False, ledger=None, **forms) -> dict:
    return {
        "ledger": ledger or _ledger_or_404(account_id),
        "failed": failed,
        "usage_form": forms.get("usage_form") or UsageForm(formdata=None),
        "payment_form": forms.get("payment_form")
        or PaymentForm(formdata=None, idempotency_key=uuid.uuid4(), payment_date=clock.today()),
        "suspend_form": SuspendForm(formdata=None),
        "reactivate_form": ReactivateForm(formdata=None),
        "limit_form": LimitForm(formdata=None),
        "increase_form": IncreaseForm(formdata=None),
        "close_form": CloseForm(formdata=None),
        "write_off_form": WriteOffForm(formdata=None),
        "exemption_form": FeeExemptionForm(formdata=None),
    }


def _ledger_refused(account_id: uuid.UUID, **forms):
    """The ledger again with the form's errors (a 422; a browser gets it once at the account's
    URL), read after the refused change; the reason also on top (the form may be gone, e.g. a
    charge on an account closed meanwhile)."""
    (form,) = forms.values()
    return form_page(
        "credit/account.html",
        "credit/_ledger.html",
        status=INVALID,
        page_url=url_for("credit.account", account_id=account_id),
        message=errors_text(form),
        **_ledger_context(account_id, failed=True, **forms),
    )


def _changed(account_id: uuid.UUID, message: str):
    """Done: the ledger's panels in place (htmx) or a redirect to the account; `message` may
    name the customer as {customer}."""
    ledger = _ledger_or_404(account_id)
    return done(
        message.format(customer=ledger.customer.full_name),
        redirect_to=url_for("credit.account", account_id=account_id),
        partial="credit/_ledger.html",
        context=lambda: _ledger_context(account_id, ledger=ledger),
    )


def _not_changed(account_id: uuid.UUID, message: str):
    return refused(
        message,
        redirect_to=url_for("credit.account", account_id=account_id),
        partial="credit/_ledger.html",
        context=lambda: _ledger_context(account_id, failed=True),
    )


@bp.get("/accounts/<uuid:account_id>")
@permission_required("credit.view")
def account(account_id: uuid.UUID):
    """The account: standing, usages, payments with allocations, and the forms a role may use."""
    return render("credit/account.html", "credit/_ledger.html", **_ledger_context(account_id))


@bp.post("/accounts/<uuid:account_id>/usages")
@permission_required("credit.operate")
def charge(account_id: uuid.UUID):
    """Charge an order to the account (a retry of the same order charges nothing more)."""
    form = UsageForm()
    account = account_get(account_id)
    if account is None:
        abort(404)
    if not form.validate_on_submit():
        return _ledger_refused(account_id, usage_form=form)
    try:
        order_id = order_for_charge(account.customer_id, form.order_number.data)
    except ValueError as error:
        form_error(form, str(error), "order_number")
        return _ledger_refused(account_id, usage_form=form)
    try:
        _, created = usage_charge(
            account_id=account_id,
            order_id=order_id,
            amount=form.amount.data,
            actor=current_user,
        )
    except LookupError:
        abort(404)
    except CreditError as error:
        form_error(form, str(error), error.field)
        return _ledger_refused(account_id, usage_form=form)
    return _changed(
        account_id,
        "Cargo registrado a {customer}."
        if created
        else "Esta orden ya estaba cargada a {customer}; no se cobró dos veces.",
    )


@bp.get("/accounts/<uuid:account_id>/orders")
@permission_required("credit.operate")
def order_options(account_id: uuid.UUID):
    """The customer's orders not yet charged whose number starts with what was typed (htmx)."""
    account = account_get(account_id)
    if account is None:
        abort(404)
    typed = request.args.get("order_number", "")[:30]
    return render(
        "credit/_order_options.html",
        orders=order_suggestions(account.customer_id, typed) if typed else [],
    )


@bp.post("/usages/<uuid:usage_id>/cancel")
@permission_required("credit.operate")
def cancel_usage(usage_id: uuid.UUID):
    """Cancel a pending usage; its credit comes back."""
    usage = usage_get(usage_id)
    if usage is None:
        abort(404)
    account_id = usage.credit_account_id
    try:
        usage_cancel(usage_id=usage_id, actor=current_user)
    except CreditError as error:
        return _not_changed(account_id, str(error))
    return _changed(account_id, "Cargo de {customer} anulado; el crédito quedó disponible.")


@bp.post("/accounts/<uuid:account_id>/payments")
@permission_required("credit.operate")
def record_payment(account_id: uuid.UUID):
    """Record a payment, allocated to the oldest charges first; a double submit posts once."""
    form = PaymentForm()
    if not form.validate_on_submit():
        return _ledger_refused(account_id, payment_form=form)
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
    except LookupError:
        abort(404)
    except CreditError as error:
        form_error(form, str(error), error.field)
        return _ledger_refused(account_id, payment_form=form)
    return _changed(
        account_id,
        "Pago de {customer} registrado."
        if created
        else "Este pago de {customer} ya estaba registrado.",
    )


@bp.post("/payments/<uuid:payment_id>/reverse")
@permission_required("credit.approve")
def reverse_payment(payment_id: uuid.UUID):
    """Reverse a payment (approvers only); what it paid is owed again."""
    payment = payment_get(payment_id)
    if payment is None:
        abort(404)
    account_id = payment.credit_account_id
    form = ReversalForm()
    if not form.validate_on_submit():
        return _not_changed(account_id, "Indique el motivo de la reversión.")
    try:
        payment_reverse(payment_id=payment_id, reason=form.reversal_reason.data, actor=current_user)
    except CreditError as error:
        return _not_changed(account_id, str(error))
    return _changed(account_id, "Pago de {customer} revertido.")


@bp.get("/payments/<uuid:payment_id>/receipt")
@permission_required("credit.reports")
def receipt(payment_id: uuid.UUID):
    """A payment's numbered receipt: a printable page, or the same as a PDF."""
    receipt = payment_receipt(payment_id)
    if receipt is None:
        abort(404)
    number = f"{receipt.payment.receipt_number:06d}"
    return document(
        "credit/receipt.html",
        "credit/_receipt.html",
        filename=f"recibo-{number}.pdf",
        title=f"Recibo de pago N.º {number}",
        receipt=receipt,
        number=number,
    )


def _account_action(account_id: uuid.UUID, form, action, message: str):
    if account_get(account_id) is None:
        abort(404)
    if not form.validate_on_submit():
        return _not_changed(account_id, errors_text(form))
    try:
        action()
    except LookupError:
        abort(404)
    except CreditError as error:
        return _not_changed(account_id, str(error))
    return _changed(account_id, message)


@bp.post("/accounts/<uuid:account_id>/suspend")
@permission_required("credit.approve")
def suspend(account_id: uuid.UUID):
    """Suspend an approved account (not by its own requester)."""
    form = SuspendForm()
    return _account_action(
        account_id,
        form,
        lambda: credit_suspend(
            account_id=account_id, reason=form.suspension_reason.data, actor=current_user
        ),
        "Cuenta de crédito de {customer} suspendida.",
    )


@bp.post("/usages/<uuid:usage_id>/waive")
@permission_required("credit.approve")
def waive_fee(usage_id: uuid.UUID):
    """Waive an unpaid late fee (approvers, with a reason); its credit comes back."""
    usage = usage_get(usage_id)
    if usage is None or usage.kind != "late_fee":
        abort(404)
    form = FeeWaiverForm()
    return _account_action(
        usage.credit_account_id,
        form,
        lambda: late_fee_waive(
            usage_id=usage_id, reason=form.waiver_reason.data, actor=current_user
        ),
        f"Recargo por mora de {{customer}} condonado ({money(usage.amount)}).",
    )


@bp.post("/accounts/<uuid:account_id>/late-fees")
@permission_required("credit.approve")
def late_fees_exemption(account_id: uuid.UUID):
    """Exempt the account from late fees, or end the exemption (approvers, with a reason)."""
    form = FeeExemptionForm()
    exempt = form.exempt.data == "1"
    return _account_action(
        account_id,
        form,
        lambda: late_fees_exemption_set(
            account_id=account_id,
            exempt=exempt,
            reason=form.exemption_reason.data,
            actor=current_user,
        ),
        "Cuenta de {customer} exonerada de recargos por mora."
        if exempt
        else "Cuenta de {customer}: vuelve a generar recargos por mora.",
    )


@bp.post("/accounts/<uuid:account_id>/reactivate")
@permission_required("credit.approve")
def reactivate(account_id: uuid.UUID):
    """Reactivate a suspended account (not by its own requester)."""
    form = ReactivateForm()
    return _account_action(
        account_id,
        form,
        lambda: credit_reactivate(
            account_id=account_id, notes=form.approval_notes.data, actor=current_user
        ),
        "Cuenta de crédito de {customer} reactivada.",
    )


@bp.post("/accounts/<uuid:account_id>/limit")
@permission_required("credit.approve")
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
        "Límite de crédito de {customer} reducido.",
    )


@bp.post("/accounts/<uuid:account_id>/close")
@permission_required("credit.approve")
def close(account_id: uuid.UUID):
    """Close an account with no balance; reopening it is a new request."""
    form = CloseForm()
    return _account_action(
        account_id,
        form,
        lambda: credit_close(
            account_id=account_id, reason=form.closure_reason.data, actor=current_user
        ),
        "Cuenta de crédito de {customer} cerrada.",
    )


@bp.post("/accounts/<uuid:account_id>/write-off")
@permission_required("credit.approve")
def request_write_off(account_id: uuid.UUID):
    """Ask to write off the balance; it enters the approval queue for a second approver."""
    form = WriteOffForm()
    return _account_action(
        account_id,
        form,
        lambda: credit_write_off_request(
            account_id=account_id, reason=form.write_off_reason.data, requester=current_user
        ),
        "Castigo del saldo de {customer} enviado a aprobación.",
    )


@bp.post("/accounts/<uuid:account_id>/increase")
@permission_required("credit.operate")
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
        "Solicitud de aumento para {customer} enviada a aprobación.",
    )


# --- statement and aging -------------------------------------------------------------------


@bp.get("/accounts/<uuid:account_id>/statement")
@permission_required("credit.reports")
def statement(account_id: uuid.UUID):
    """Usages, payments and allocations with running balance; printable, CSV or PDF (the page
    also offers to e-mail it to the customer)."""
    account = account_get(account_id)
    if account is None:
        abort(404)
    form = DateRangeForm(request.args)
    if not form.validate():
        abort(400)
    if request.args.get("format") == "csv":
        opening, lines, _ = statement_lines(account_id, start=form.start.data, end=form.end.data)
        rows = [["", "Saldo inicial", "", "", opening]] + [
            [line.on, line.description, line.charge or "", line.credit or "", line.balance]
            for line in lines
        ]
        return csv_response(
            f"estado-de-cuenta-{account_id}.csv",
            ["Fecha", "Detalle", "Cargo", "Abono", "Saldo"],
            rows,
        )
    issued_on = clock.today()
    return document(
        "credit/statement.html",
        STATEMENT_PARTIAL,
        filename=f"estado-de-cuenta-{issued_on.isoformat()}.pdf",
        form=form,
        mail_form=statement_mail_form_blank(form.start.data, form.end.data),
        **statement_document(
            account, start=form.start.data, end=form.end.data, issued_on=issued_on
        ),
    )


@bp.get("/aging")
@permission_required("credit.reports")
def aging():
    """Outstanding credit by age at the end of a day (today unless `as_of`): totals and chart,
    accounts largest overdue first; CSV too."""
    bucket = request.args.get("bucket") or None
    if bucket is not None and bucket not in dict(AGING_BUCKETS):
        abort(400)
    form = AgingForm(request.args)
    as_of = form.as_of.data if form.validate() else None
    today = as_of or clock.today()
    if request.args.get("format") == "csv":
        keys = [key for key, _ in AGING_BUCKETS]
        rows = (
            [row.name, *[getattr(row, key) for key in keys], row.total]
            for row in keep_scope(aging_rows(bucket=bucket, today=today))
        )
        return csv_response(
            f"antiguedad-de-saldos-{today.isoformat()}.csv",
            ["Cliente", *[label for _, label in AGING_BUCKETS], "Total"],
            rows,
        )
    try:
        page = aging_page(bucket=bucket, cursor=request.args.get("after"), today=today)
    except ValueError:
        abort(400)
    context = {"page": page, "buckets": AGING_BUCKETS, "bucket": bucket, "as_of": as_of}
    if request.args.get("after") and is_htmx():
        return render("credit/_aging_rows.html", **context)  # "Cargar más"
    totals = aging_summary(today=today)
    peak = max([totals[key] for key, _ in AGING_BUCKETS] + [Decimal(1)])
    return render(
        "credit/aging.html",
        form=form,
        latest_day=clock.today(),
        totals=totals,
        peak=peak,
        today=today,
        written_off=written_off_total(),
        **context,
    )
