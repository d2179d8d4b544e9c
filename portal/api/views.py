"""The checkout API: find a customer, read its credit, charge and cancel, all under /api/v1."""

import re
import uuid

from flask import current_app, g, jsonify, render_template, request
from marshmallow import Schema, ValidationError

from portal.api import bp
from portal.api.auth import bearer_authenticate, rate_limit_hit, scope_required
from portal.api.labels import PROBLEMS
from portal.api.openapi import openapi_document, operation
from portal.api.schemas import (
    IDEMPOTENCY_KEY_PATTERN,
    ChargeCreateSchema,
    ChargeSchema,
    CreditSchema,
    CustomerQuerySchema,
    CustomerSchema,
    field_errors,
)
from portal.api.selectors import customer_body, customer_credit
from portal.api.services import api_charge_cancel, api_charge_create, api_key_touch
from portal.customers.selectors import customer_find
from portal.errors import Problem
from portal.extensions import csrf

csrf.exempt(bp)
PREFIX = "/api/v1"


@bp.before_request
def authenticate():
    """Every declared operation needs a bearer key with its scope; cookies count for nothing."""
    declared = getattr(current_app.view_functions.get(request.endpoint), "api_operation", None)
    if declared is None or declared.scope is None:
        return
    caller, stale = bearer_authenticate(request.headers.get("Authorization"))
    rate_limit_hit(caller)
    scope_required(caller, declared.scope)
    if stale:
        api_key_touch(caller=caller)
    g.api_caller = caller


def _load(schema: type[Schema], data) -> dict:
    try:
        return schema().load(data)
    except ValidationError as error:
        raise Problem(
            422,
            "invalid_request",
            "La solicitud tiene datos inválidos.",
            errors=field_errors(error),
        ) from None


def _json_body() -> dict:
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        raise Problem(400, "invalid_json", "El cuerpo debe ser un objeto JSON.")
    return body


@bp.get(f"{PREFIX}/customers")
@operation(
    summary="Buscar un cliente por correo, teléfono o documento",
    scope="customers:read",
    query=CustomerQuerySchema,
    responses={200: ("El cliente", CustomerSchema)},
    problems={404: "Ningún cliente de la organización coincide."},
)
def customers_find():
    """Exactly one of email, phone or document; normalised like the staff search box."""
    customer = customer_find(**_load(CustomerQuerySchema, request.args))
    if customer is None:
        raise Problem(404, "customer_not_found", "Ningún cliente coincide con la búsqueda.")
    return jsonify(CustomerSchema().dump(customer_body(customer)))


@bp.get(f"{PREFIX}/customers/<uuid:customer_id>/credit")
@operation(
    summary="Consultar el crédito de un cliente",
    scope="credit:read",
    responses={200: ("Estado, límite, usado, disponible, mora y plazo", CreditSchema)},
    problems={404: "No existe el cliente (o es de otra organización)."},
)
def customer_credit_show(customer_id: uuid.UUID):
    """What checkout asks before offering credit: may this customer buy US$ X on credit?"""
    credit = customer_credit(customer_id)
    if credit is None:
        raise Problem(404, "customer_not_found", "No existe un cliente con ese id.")
    return jsonify(CreditSchema().dump(credit))


@bp.post(f"{PREFIX}/credit/charges")
@operation(
    summary="Cargar una orden al crédito del cliente",
    scope="credit:charge",
    body=ChargeCreateSchema,
    idempotent=True,
    responses={
        201: ("El cargo creado", ChargeSchema),
        200: ("La orden ya tenía este cargo (mismo monto y cuenta)", ChargeSchema),
    },
    problems={
        404: "No existe el cliente (o es de otra organización).",
        409: "La Idempotency-Key se usó con otro cuerpo (idempotency_key_reused), o la orden ya "
        "tiene un cargo distinto (order_already_charged).",
        422: "Cargo rechazado: insufficient_credit, account_suspended, account_not_approved, "
        "overdue_hold, customer_blocked, customer_inactive; o datos inválidos (invalid_request).",
    },
)
def charge_create():
    """Charge once per Idempotency-Key: a retry with the same body gets the first answer."""
    key = request.headers.get("Idempotency-Key", "")
    if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
        raise Problem(
            422,
            "idempotency_key_required",
            "Falta la cabecera Idempotency-Key o no es válida (1 a 255 caracteres visibles).",
        )
    data = _load(ChargeCreateSchema, _json_body())
    status, body, replayed = api_charge_create(caller=g.api_caller, idempotency_key=key, **data)
    mimetype = "application/problem+json" if status >= 400 else "application/json"
    response = current_app.response_class(
        current_app.json.dumps(body), status=status, mimetype=mimetype
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.post(f"{PREFIX}/credit/charges/<uuid:charge_id>/cancel")
@operation(
    summary="Anular un cargo pendiente",
    scope="credit:charge",
    responses={200: ("El cargo anulado; el crédito vuelve a estar disponible", ChargeSchema)},
    problems={
        404: "No existe el cargo (o es de otra organización).",
        409: "El cargo ya tiene pagos aplicados o no está pendiente (charge_not_cancellable).",
    },
)
def charge_cancel(charge_id: uuid.UUID):
    """Release the credit of a pending charge, by the same rule staff follow."""
    return jsonify(api_charge_cancel(caller=g.api_caller, usage_id=charge_id))


@bp.get(f"{PREFIX}/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of this API (generated from the code)."""
    return jsonify(openapi_document(current_app))


@bp.get(f"{PREFIX}/docs")
def docs():
    """A reference page for developers, rendered from the same document."""
    return render_template(
        "api/docs.html", spec=openapi_document(current_app), problem_codes=PROBLEMS
    )
