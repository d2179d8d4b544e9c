"""Collections pages: the overdue worklist (filters, paging, assignment), the contact log, the
dunning levels (org admins), the reminder letters to print, and the statement e-mailed from the
statement page."""

import uuid

from flask import abort, request, url_for
from flask_login import current_user

from portal import clock
from portal.auth.permissions import permission_required
from portal.collections import bp
from portal.collections.forms import (
    ME,
    AssignForm,
    ContactForm,
    DunningLevelForm,
    WorklistFilterForm,
)
from portal.collections.selectors import (
    OVERDUE_BUCKETS,
    UNASSIGNED,
    WorklistFilters,
    collections_dashboard,
    collectors,
    dunning_letter,
    dunning_levels,
    worklist_page,
)
from portal.collections.services import (
    DUNNING_SUGGESTIONS,
    PLACEHOLDERS,
    CollectionsError,
    account_customer_name,
    assignment_set,
    contact_record,
    dunning_level_save,
    letter_mark_mailed,
    statement_send,
)
from portal.credit.forms import StatementMailForm, statement_mail_form_blank
from portal.credit.services import account_get
from portal.customers.services import customer_get
from portal.documents import document
from portal.htmx import INVALID, done, form_page, is_htmx, refused, render
from portal.mail.jobs import outbox_deliver_soon
from portal.validation import choices, errors_text, form_error

FILTERS = ("bucket", "collector", "quiet", "broken")
ORIGINS = ("account", "customer")  # the page a contact form was sent from, to go back to


def _filter_args(source) -> dict:
    return {key: source[key] for key in FILTERS if source.get(key)}


def _filters(form: WorklistFilterForm, people: list) -> WorklistFilters:
    form.collector.choices = choices(
        {"": "Todos", UNASSIGNED: "Sin asignar"}
        | {str(person.staff_user_id): person.full_name for person in people}
    )
    if not form.validate():
        return WorklistFilters()
    return WorklistFilters(
        bucket=form.bucket.data or None,
        collector=form.collector.data,
        quiet=form.quiet.data,
        broken=form.broken.data,
    )


@bp.get("/")
@permission_required("collections.work")
def index():
    """Accounts with an overdue balance: broken promises and due next actions first, then the
    largest overdue; filtered, paged with "Cargar más", assigned in place."""
    people = collectors()
    form = WorklistFilterForm(request.args)
    filters = _filters(form, people)
    try:
        page = worklist_page(filters, cursor=request.args.get("after"))
    except ValueError:
        abort(400)
    assign = AssignForm(formdata=None)
    assign.assignee.choices = choices(
        {ME: "A mí"} | {str(person.staff_user_id): person.full_name for person in people}
    )
    context = {
        "page": page,
        "filters": form,
        "filter_args": _filter_args(request.args),
        "buckets": OVERDUE_BUCKETS,
        "assign": assign,
    }
    if request.args.get("after") and is_htmx():
        return render("collections/_rows.html", **context)  # "Cargar más"
    status = INVALID if form.errors else 200
    return render("collections/index.html", "collections/_table.html", status=status, **context)


@bp.get("/dashboard")
@permission_required("collections.work")
def dashboard():
    """Overdue credit over the last 12 months by bucket, this month's promises and collections,
    days sales outstanding."""
    return render(
        "collections/dashboard.html", board=collections_dashboard(), buckets=OVERDUE_BUCKETS
    )


@bp.post("/assign")
@permission_required("collections.work")
def assign():
    """Assign the selected accounts (one or many) to me or a colleague; audited per account."""
    form = AssignForm()
    back = url_for("collections.index", **_filter_args(request.form))
    partial = "collections/_assigned.html"
    if not form.validate():
        return refused(errors_text(form), redirect_to=back, partial=partial)
    collector_id = current_user.staff_user_id if form.assignee.data == ME else form.assignee.data
    try:
        names = assignment_set(
            account_ids=form.account_ids.data, collector_id=collector_id, actor=current_user
        )
    except CollectionsError as error:
        return refused(str(error), redirect_to=back, partial=partial)
    collector = next(person for person in collectors() if person.staff_user_id == collector_id)
    return done(
        f"Asignadas a {collector.full_name}: {', '.join(names)}.",
        redirect_to=back,
        partial=partial,
        context=lambda: {"account_ids": form.account_ids.data, "collector": collector},
    )


def _contact_back(account_id: uuid.UUID, customer_id: uuid.UUID, origin: str) -> str:
    if origin == "customer":
        return url_for("customers.detail", customer_id=customer_id)
    return url_for("credit.account", account_id=account_id)


@bp.post("/accounts/<uuid:account_id>/contacts")
@permission_required("collections.work")
def log_contact(account_id: uuid.UUID):
    """Log a contact (and a promise to pay) on the account; the log is append-only."""
    account = account_get(account_id)
    if account is None:
        abort(404)
    origin = request.form.get("origin") if request.form.get("origin") in ORIGINS else "account"
    form = ContactForm()
    if form.validate():
        try:
            contact_record(
                account_id=account_id,
                channel=form.channel.data,
                outcome=form.outcome.data,
                note=form.note.data,
                next_action_on=form.next_action_on.data,
                promise_amount=form.promise_amount.data,
                promise_due_on=form.promise_due_on.data,
                actor=current_user,
            )
        except CollectionsError as error:
            form_error(form, str(error), error.field)
        else:
            name = account_customer_name(account_id)
            return done(
                f"Contacto registrado. Cliente: {name}.",
                redirect_to=_contact_back(account_id, account.customer_id, origin),
                partial="collections/_contacts.html",
                context=lambda: {
                    "contact_account": account,
                    "contact_form": ContactForm(formdata=None),
                    "origin": origin,
                },
            )
    return form_page(
        "collections/contact.html",
        "collections/_contacts.html",
        page_url=_contact_back(account_id, account.customer_id, origin),
        status=INVALID,
        contact_account=account,
        contact_form=form,
        origin=origin,
        customer_name=account_customer_name(account_id),
        failed=True,
        message=errors_text(form),
    )


@bp.route("/dunning", methods=["GET", "POST"])
@permission_required("collections.dunning")
def dunning():
    """The organization's dunning levels and the form to add one or change one (?level=)."""
    levels = dunning_levels()
    form = DunningLevelForm()
    if form.validate_on_submit():
        try:
            level = dunning_level_save(
                level_id=form.level_id.data,
                days_overdue=form.days_overdue.data,
                name=form.name.data,
                subject=form.subject.data,
                body=form.body.data,
                attach_statement=form.attach_statement.data,
                actor=current_user,
            )
        except CollectionsError as error:
            form_error(form, str(error), error.field)
        else:
            return done(
                f"Nivel «{level.name}» guardado.", redirect_to=url_for("collections.dunning")
            )
    elif not form.is_submitted():
        form = _level_form(levels, request.args.get("level"))
    status = INVALID if form.is_submitted() else 200
    return render(
        "collections/dunning.html",
        levels=levels,
        form=form,
        placeholders=PLACEHOLDERS,
        status=status,
    )


def _level_form(levels: list, chosen: str | None) -> DunningLevelForm:
    """The form filled with the level asked for, else with the next suggested level."""
    level = next((level for level in levels if str(level.level_id) == chosen), None)
    if level is not None:
        return DunningLevelForm(formdata=None, obj=level)
    used = {level.days_overdue for level in levels}
    suggestion = next((s for s in DUNNING_SUGGESTIONS if s[0] not in used), None)
    if suggestion is None:
        return DunningLevelForm(formdata=None)
    keys = ("days_overdue", "name", "subject", "body")
    return DunningLevelForm(formdata=None, data=dict(zip(keys, suggestion, strict=True)))


@bp.get("/letters/<uuid:send_id>")
@permission_required("collections.work")
def letter(send_id: uuid.UUID):
    """A reminder letter, ready to print, for a customer without e-mail."""
    found = dunning_letter(send_id)
    if found is None:
        abort(404)
    send, customer, address = found
    return document(
        "collections/letter.html",
        "collections/_letter.html",
        filename=f"carta-{send.sent_on.isoformat()}.pdf",
        title=f"Carta · {customer.full_name}",
        send=send,
        customer=customer,
        address=address,
    )


@bp.post("/letters/<uuid:send_id>/mailed")
@permission_required("collections.work")
def letter_mailed(send_id: uuid.UUID):
    """Staff printed and mailed the letter: it leaves the worklist's "Enviar carta"."""
    try:
        send = letter_mark_mailed(send_id=send_id, actor=current_user)
    except LookupError:
        abort(404)
    return done(
        f"Carta marcada como enviada: {send.subject}.",
        redirect_to=url_for("collections.letter", send_id=send_id),
    )


def _statement_mail_panel(account, customer, mail_form: StatementMailForm, *, failed=False):
    """What the statement page's "Enviar por correo" panel shows after a send (or a refusal)."""
    return lambda: {
        "account": account,
        "customer": customer,
        "mail_form": mail_form,
        "failed": failed,
    }


@bp.post("/accounts/<uuid:account_id>/statement")
@permission_required("credit.reports")
def statement_mail(account_id: uuid.UUID):
    """E-mail the statement of the period shown to the customer, logged as a contact; a double
    submit sends it once."""
    account = account_get(account_id)
    if account is None:
        abort(404)
    customer = customer_get(account.customer_id)
    form = StatementMailForm()
    back = url_for(
        "credit.statement", account_id=account_id, start=form.start.data, end=form.end.data
    )
    answer = {"redirect_to": back, "partial": "credit/_statement_mail.html"}
    refusal = _statement_mail_panel(account, customer, form, failed=True)
    if not form.validate_on_submit():
        return refused(errors_text(form), context=refusal, **answer)
    try:
        address, created = statement_send(
            account_id=account_id,
            start=form.start.data,
            end=form.end.data or clock.today(),
            key=form.idempotency_key.data,
            actor=current_user,
        )
    except LookupError:
        abort(404)
    except CollectionsError as error:
        return refused(str(error), context=refusal, **answer)
    if created:
        outbox_deliver_soon()
    return done(
        f"Estado de cuenta de {customer.full_name} enviado a {address}."
        if created
        else f"El estado de cuenta de {customer.full_name} ya se había enviado a {address}.",
        context=_statement_mail_panel(
            account, customer, statement_mail_form_blank(form.start.data, form.end.data)
        ),
        **answer,
    )
