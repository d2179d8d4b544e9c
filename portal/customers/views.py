"""Customer pages: search as you type, register, edit, status, customer 360, addresses inline."""

import logging
import uuid

from flask import (
    Response,
    abort,
    current_app,
    make_response,
    redirect,
    request,
    url_for,
)
from flask_login import current_user

from portal.auth.permissions import permission_required
from portal.csv_export import csv_response
from portal.customers import bp
from portal.customers.forms import (
    AddressForm,
    CustomerForm,
    NoteForm,
    SearchForm,
    StatusForm,
    TimelineForm,
)
from portal.customers.recent import recent_customer_add, recent_customers
from portal.customers.selectors import (
    PAGE_SIZE,
    SearchFilters,
    address_list,
    contact_keys,
    customer_duplicates,
    customer_export_rows,
    customer_match_count,
    customer_page,
    customer_search,
)
from portal.customers.services import (
    CustomerError,
    StaleEdit,
    address_create,
    address_deactivate,
    address_get,
    address_update,
    customer_create,
    customer_export_start,
    customer_get,
    customer_note_add,
    customer_set_status,
    customer_update,
)
from portal.customers.timeline import timeline_page
from portal.db import keep_scope
from portal.errors import error_response
from portal.extensions import limiter
from portal.htmx import INVALID, done, form_page, is_htmx, refused, render
from portal.validation import errors_text, form_error

log = logging.getLogger(__name__)
QUICK_RESULTS = 8  # the header search's dropdown: a few best matches, then "see all"
MAX_PAGES = 20  # a page opened with ?pages=N shows at most this many pages (500 rows)
SEARCH_KEYS = ("q", "status", "customer_type", "loyalty_tier", "segment")
EXPORT_COLUMNS = [
    ("customer_id", "ID"),
    ("first_name", "Nombre"),
    ("last_name", "Apellido"),
    ("email", "Correo"),
    ("phone", "Teléfono"),
    ("document_type", "Tipo de documento"),
    ("document_number", "Documento"),
    ("customer_type", "Tipo"),
    ("status", "Estado"),
    ("loyalty_tier", "Nivel"),
    ("created_at", "Creado"),
    ("last_purchase_at", "Última compra"),
    ("company_name", "Razón social"),  # last: files read by column position keep working
]


def _customer_or_404(customer_id: uuid.UUID):
    customer = customer_get(customer_id)
    if customer is None:
        abort(404)
    return customer


def _search_form() -> tuple[SearchForm, SearchFilters]:
    form = SearchForm(request.args)
    if not form.validate():
        abort(400)
    filters = SearchFilters(
        query=form.q.data,
        status=form.status.data,
        customer_type=form.customer_type.data,
        loyalty_tier=form.loyalty_tier.data,
        segment=form.segment.data,
    )
    return form, filters


def _search_arguments() -> dict[str, str]:
    """The search's non-empty filters for links: only known keys ever reach url_for."""
    return {name: request.args[name] for name in SEARCH_KEYS if request.args.get(name)}


@bp.get("/")
@permission_required("customers.view")
def index():
    """Search customers; htmx gets only the results (or only the next rows).

    "Cargar más" asks for the page after the cursor and puts `pages` (how many pages are
    shown) in the address bar, so Back or a reload shows them all again in one request.
    """
    form, filters = _search_form()
    pages = min(form.pages.data or 1, MAX_PAGES)
    try:
        if form.after.data:
            page = customer_search(filters, cursor=form.after.data)
        else:
            page = customer_search(filters, page_size=PAGE_SIZE * pages)
    except ValueError:
        abort(400)
    arguments = _search_arguments()
    context = {
        "form": form,
        "page": page,
        "filters": filters,
        "arguments": arguments,
        "pages": pages,
        "max_pages": MAX_PAGES,
    }
    if not is_htmx():
        context["total"] = customer_match_count(filters)  # htmx fetches it after the rows
    if form.after.data:
        headers = {"HX-Push-Url": url_for("customers.index", pages=pages, **arguments)}
        return render("customers/index.html", "customers/_rows.html", headers=headers, **context)
    # The address bar shows the search without its empty filters, so the link can be shared.
    headers = {"HX-Push-Url": url_for("customers.index", **arguments)} if is_htmx() else {}
    return render("customers/index.html", "customers/_results.html", headers=headers, **context)


@bp.get("/quick")
@permission_required("customers.view")
def quick():
    """The header search's dropdown: the best matches, or my recent customers when empty."""
    query = SearchForm(request.args).q.data or ""
    if not is_htmx():  # the dropdown is a fragment; a browser gets the search page itself
        return redirect(url_for("customers.index", **({"q": query} if query else {})))
    if query:
        customers = customer_search(SearchFilters(query=query), page_size=QUICK_RESULTS).customers
    else:
        customers = recent_customers(user=current_user)
    return render("customers/_quick.html", customers=customers, query=query)


@bp.get("/count")
@permission_required("customers.view")
def count():
    """The number of results of a search (loaded after the results, so typing stays fast)."""
    _, filters = _search_form()
    return render("customers/_count.html", total=customer_match_count(filters), filters=filters)


def _export_breached(limit) -> Response:
    return make_response(
        error_response(429, "Alcanzó el máximo de exportaciones por hora. Intente más tarde.")
    )


@bp.get("/export.csv")
@permission_required("customers.export")
@limiter.limit(
    lambda: current_app.config["CUSTOMER_EXPORT_RATE_LIMIT"],
    key_func=lambda: f"customer-export:{current_user.get_id()}",
    deduct_when=lambda response: response.status_code == 200,
    on_breach=_export_breached,
)
def export():
    """The current search as a streamed CSV file: capped, audited, a few per user and hour."""
    _, filters = _search_form()
    try:
        exported = customer_export_start(
            filters=filters,
            cap=current_app.config["CUSTOMER_EXPORT_MAX_ROWS"],
            actor=current_user,
        )
    except CustomerError as error:
        return error_response(INVALID, str(error))
    log.info("customer export", extra={"query_length": len(filters.query), "rows": exported})
    rows = (
        [getattr(customer, column) for column, _ in EXPORT_COLUMNS]
        for customer in keep_scope(customer_export_rows(filters, limit=exported))
    )
    return csv_response("clientes.csv", [label for _, label in EXPORT_COLUMNS], rows)


@bp.route("/new", methods=["GET", "POST"])
@permission_required("customers.edit")
def create():
    """Register a customer."""
    form = CustomerForm()
    if form.validate_on_submit():
        try:
            customer = customer_create(data=form.customer_data(), actor=current_user)
        except CustomerError as error:
            return _form_page(form, None, error)
        return done(
            "Cliente registrado.",
            redirect_to=url_for("customers.detail", customer_id=customer.customer_id),
            code=302,
        )
    return _form_page(form, None)


def _form_page(form, customer, error: CustomerError | None = None):
    if error is not None:
        form_error(form, str(error), error.field)
    status = 200
    if form.is_submitted():
        status = 409 if isinstance(error, StaleEdit) else INVALID
    existing = error.existing if error is not None else None
    return form_page(
        "customers/form.html", form=form, customer=customer, existing=existing, status=status
    )


@bp.get("/duplicates")
@permission_required("customers.edit")
def duplicates():
    """Possible duplicates of the customer being typed (an htmx fragment)."""
    args = request.args
    keys = contact_keys(email=args.get("email"), phone=args.get("phone"))
    data = {
        "company_name": (args.get("company_name") or "").strip()[:255]
        if args.get("customer_type") == "b2b"
        else "",
        "first_name": (args.get("first_name") or "").strip()[:100],
        "last_name": (args.get("last_name") or "").strip()[:100],
        "email": keys["email"],
        "phone": keys["phone"],
        "document_number": "".join((args.get("document_number") or "").split()).upper()[:50]
        or None,
    }
    try:
        exclude = uuid.UUID(args["customer_id"]) if args.get("customer_id") else None
    except ValueError:
        abort(400)
    return render(
        "customers/_duplicates.html", matches=customer_duplicates(data=data, exclude=exclude)
    )


@bp.get("/<uuid:customer_id>")
@permission_required("customers.view")
def detail(customer_id: uuid.UUID):
    """Customer 360: profile, tier, segment, credit standing, addresses, activity."""
    page = customer_page(customer_id)
    if page is None:
        abort(404)
    customer = page.customer
    recent_customer_add(user=current_user, customer_id=customer_id)
    return render(
        "customers/detail.html",
        customer=customer,
        segment=page.segment,
        timeline=page.timeline,
        addresses=page.addresses,
        status_form=StatusForm(status=customer.status, version_id=customer.version_id),
        note_form=NoteForm(),
        timeline_form=TimelineForm(formdata=None),
    )


@bp.get("/<uuid:customer_id>/timeline")
@permission_required("customers.view")
def timeline(customer_id: uuid.UUID):
    """The activity timeline, filtered by kind and paged; htmx gets the panel or the next items."""
    customer = _customer_or_404(customer_id)
    form = TimelineForm(request.args)
    if not form.validate():
        abort(400)
    try:
        page = timeline_page(customer_id, kind=form.kind.data, cursor=form.after.data)
    except ValueError:
        abort(400)
    partial = "customers/_timeline_items.html" if form.after.data else "customers/_timeline.html"
    return render(
        "customers/timeline.html",
        partial,
        customer=customer,
        timeline=page,
        timeline_form=form,
        note_form=NoteForm(),
    )


@bp.post("/<uuid:customer_id>/notes")
@permission_required("customers.note")
def note_add(customer_id: uuid.UUID):
    """Add a note to the timeline (htmx: the refreshed panel; a browser: back to the page)."""
    customer = _customer_or_404(customer_id)
    form = NoteForm()
    page = url_for("customers.detail", customer_id=customer_id, _anchor="timeline-card")

    def panel(note_form=None) -> dict:
        return {
            "customer": customer,
            "timeline": timeline_page(customer_id),
            "timeline_form": TimelineForm(formdata=None),
            "note_form": note_form or NoteForm(formdata=None),
        }

    if not form.validate_on_submit():
        return refused(
            errors_text(form),
            redirect_to=page,
            partial="customers/_timeline.html",
            context=lambda: panel(form),
        )
    customer_note_add(customer_id=customer_id, body=form.body.data, actor=current_user)
    return done(
        f"Nota agregada a {customer.full_name}.",
        redirect_to=page,
        partial="customers/_timeline.html",
        context=panel,
    )


@bp.route("/<uuid:customer_id>/edit", methods=["GET", "POST"])
@permission_required("customers.edit")
def edit(customer_id: uuid.UUID):
    """Edit a customer; a save based on an outdated version is refused."""
    customer = _customer_or_404(customer_id)
    form = CustomerForm(obj=customer)
    if request.method == "GET":
        form.tags.data = ", ".join(customer.tags or [])
    if form.validate_on_submit():
        try:
            customer_update(
                customer_id=customer_id,
                data=form.customer_data(),
                version_id=form.version_id.data,
                actor=current_user,
            )
        except CustomerError as error:
            return _form_page(form, customer_get(customer_id), error)
        return done(
            "Cambios guardados.",
            redirect_to=url_for("customers.detail", customer_id=customer_id),
            code=302,
        )
    return _form_page(form, customer)


@bp.post("/<uuid:customer_id>/status")
@permission_required("customers.edit")
def change_status(customer_id: uuid.UUID):
    """Set active / inactive / blocked with a reason."""
    _customer_or_404(customer_id)
    page = url_for("customers.detail", customer_id=customer_id)
    form = StatusForm()
    if not form.validate_on_submit():
        return refused(errors_text(form), redirect_to=page)
    try:
        customer_set_status(
            customer_id=customer_id,
            status=form.status.data,
            reason=form.status_reason.data,
            version_id=form.version_id.data,
            actor=current_user,
        )
    except CustomerError as error:
        return refused(str(error), redirect_to=page)
    return done("Estado actualizado.", redirect_to=page)


# --- addresses (htmx partials; full pages without JavaScript) -----------------------------


def _addresses_response(customer, message: str):
    # The form targets itself (to show its errors); a saved change refreshes the whole list.
    return done(
        message,
        redirect_to=url_for(
            "customers.detail", customer_id=customer.customer_id, _anchor="addresses"
        ),
        code=302,
        partial="customers/_addresses.html",
        headers={"HX-Retarget": "#addresses", "HX-Reswap": "outerHTML"},
        context=lambda: {
            "customer": customer,
            "addresses": address_list(customer.customer_id),
        },
        toast=True,
    )


def _address_form_response(customer, form, address=None, status=200):
    return form_page(
        "customers/address_page.html",
        "customers/_address_form.html",
        customer=customer,
        form=form,
        address=address,
        status=status,
    )


@bp.get("/<uuid:customer_id>/addresses")
@permission_required("customers.view")
def addresses(customer_id: uuid.UUID):
    """The address list fragment (also what "cancel" restores)."""
    customer = _customer_or_404(customer_id)
    return render(
        "customers/_addresses.html", customer=customer, addresses=address_list(customer_id)
    )


@bp.route("/<uuid:customer_id>/addresses/new", methods=["GET", "POST"])
@permission_required("customers.edit")
def address_new(customer_id: uuid.UUID):
    """Add an address inline."""
    customer = _customer_or_404(customer_id)
    form = AddressForm()
    if form.validate_on_submit():
        address_create(customer_id=customer_id, data=form.address_data(), actor=current_user)
        return _addresses_response(customer, f"Dirección de {customer.full_name} agregada.")
    return _address_form_response(customer, form, status=INVALID if form.is_submitted() else 200)


@bp.route("/<uuid:customer_id>/addresses/<uuid:address_id>/edit", methods=["GET", "POST"])
@permission_required("customers.edit")
def address_edit(customer_id: uuid.UUID, address_id: uuid.UUID):
    """Edit an address inline."""
    customer = _customer_or_404(customer_id)
    address = address_get(customer_id, address_id)
    if address is None:
        abort(404)
    form = AddressForm(obj=address)
    if form.validate_on_submit():
        try:
            address_update(
                customer_id=customer_id,
                address_id=address_id,
                data=form.address_data(),
                actor=current_user,
            )
        except CustomerError as error:
            form_error(form, str(error), error.field)
            return _address_form_response(customer, form, address, INVALID)
        return _addresses_response(customer, f"Dirección de {customer.full_name} guardada.")
    return _address_form_response(customer, form, address, INVALID if form.is_submitted() else 200)


@bp.post("/<uuid:customer_id>/addresses/<uuid:address_id>/deactivate")
@permission_required("customers.edit")
def address_deactivate_view(customer_id: uuid.UUID, address_id: uuid.UUID):
    """Deactivate an address inline."""
    customer = _customer_or_404(customer_id)
    try:
        address_deactivate(customer_id=customer_id, address_id=address_id, actor=current_user)
    except LookupError:
        abort(404)
    return _addresses_response(customer, f"Dirección de {customer.full_name} desactivada.")
