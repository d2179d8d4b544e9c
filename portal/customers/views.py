"""Customer list and customer page (read-only for now)."""

import uuid

from flask import abort, render_template

from portal.auth.models import ROLES
from portal.customers import bp
from portal.customers.services import address_list, customer_360, customer_get, customer_recent
from portal.security import role_required


@bp.get("/")
@role_required(*ROLES)
def index():
    """Most recently active customers of the organization."""
    return render_template("customers/index.html", customers=customer_recent())


@bp.get("/<uuid:customer_id>")
@role_required(*ROLES)
def detail(customer_id: uuid.UUID):
    """The customer page; another organization's customer is a 404 like an unknown id."""
    customer = customer_get(customer_id)
    if customer is None:
        abort(404)
    return render_template(
        "customers/detail.html",
        customer=customer,
        facts=customer_360(customer_id),
        addresses=address_list(customer_id),
    )
