"""The OpenAPI 3.1 document, built by apispec from the routes and their declared operations.

Each view declares its operation once (`@operation`): the scope it needs, its query, header and
body schemas and its answers. The request hooks enforce the scope from the same declaration,
so the document cannot drift from what the code does.
"""

import functools
import re
from dataclasses import dataclass, field

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema

from portal.api.models import SCOPES
from portal.api.schemas import (
    IDEMPOTENCY_KEY_PATTERN,
    ChargeCreateSchema,
    ChargeSchema,
    CreditSchema,
    CustomerSchema,
    ProblemSchema,
)

PROBLEM = "application/problem+json"
# Answers every authenticated operation may give, whatever it does.
COMMON_PROBLEMS = {
    401: "Falta la clave API, o está revocada o mal escrita.",
    403: "La clave no tiene el permiso que la operación requiere.",
    429: "Demasiadas solicitudes con esta clave.",
}
DESCRIPTION = """\
API de checkout del portal de servicio al cliente: el servicio de órdenes consulta y carga el
crédito de los clientes. Cada solicitud lleva `Authorization: Bearer <clave>`; la clave la crea
un administrador en Configuración y define la organización y los permisos. Los errores son
problemas RFC 9457 (`application/problem+json`) con un `code` estable y un `detail` en español.
"""


@dataclass(frozen=True)
class Operation:
    """What a view declares about itself for the document and the request hooks."""

    summary: str
    scope: str | None
    responses: dict[int, tuple[str, type[Schema] | None]]
    query: type[Schema] | None = None
    body: type[Schema] | None = None
    idempotent: bool = False
    problems: dict[int, str] = field(default_factory=dict)


def operation(**declaration):
    """Declare a view's API operation (see Operation); the view itself is unchanged."""

    def decorator(view):
        view.api_operation = Operation(**declaration)
        return functools.wraps(view)(view)

    return decorator


def _path_parameters(rule: str) -> tuple[str, list[dict]]:
    parameters = []
    for name in re.findall(r"<uuid:([a-z_]+)>", rule):
        parameters.append(
            {
                "in": "path",
                "name": name,
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
            }
        )
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule), parameters


def _operation_document(endpoint: str, declared: Operation, view, parameters: list[dict]) -> dict:
    responses = {}
    for status, (description, schema) in declared.responses.items():
        responses[str(status)] = {"description": description}
        if schema is not None:
            responses[str(status)]["content"] = {"application/json": {"schema": schema}}
    problems = dict(declared.problems)
    if declared.scope:
        problems |= COMMON_PROBLEMS
    if declared.query or declared.body or parameters or declared.idempotent:
        problems.setdefault(422, "Datos inválidos: `errors` dice qué campo y por qué.")
        problems.setdefault(400, "Solicitud mal formada: JSON inválido o caracteres NUL.")
    for status, description in sorted(problems.items()):
        responses[str(status)] = {
            "description": description,
            "content": {PROBLEM: {"schema": "Problem"}},
        }
    document = {
        "operationId": endpoint.removeprefix("api."),
        "summary": declared.summary,
        "description": (view.__doc__ or "").strip(),
        "responses": responses,
        "parameters": list(parameters),
    }
    if declared.scope:
        document["security"] = [{"bearer": []}]
        document["x-scope"] = declared.scope
    if declared.query:
        document["parameters"].append({"in": "query", "schema": declared.query})
    if declared.idempotent:
        document["parameters"].append(
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": True,
                "description": "Una clave por intento de cargo: el reintento con la misma "
                "clave y el mismo cuerpo recibe la primera respuesta.",
                "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN, "maxLength": 255},
            }
        )
    if declared.body:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": declared.body}},
        }
    return document


def openapi_document(app: Flask) -> dict:
    """The whole document for the app's API routes, generated afresh."""
    spec = APISpec(
        title="Portal de clientes: API de checkout",
        version="1.0.0",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": DESCRIPTION},
    )
    spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "Clave API `csk_…`. Permisos: "
            + ", ".join(f"`{scope}` ({label})" for scope, label in SCOPES.items()),
        },
    )
    spec.components.schema("Problem", schema=ProblemSchema)
    for schema in (CustomerSchema, CreditSchema, ChargeCreateSchema, ChargeSchema):
        spec.components.schema(schema.__name__.removesuffix("Schema"), schema=schema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        view = app.view_functions[rule.endpoint]
        declared = getattr(view, "api_operation", None)
        if declared is None:
            continue
        path, parameters = _path_parameters(rule.rule)
        method = next(iter(sorted(rule.methods - {"HEAD", "OPTIONS"}))).lower()
        spec.path(
            path=path,
            operations={method: _operation_document(rule.endpoint, declared, view, parameters)},
        )
    return spec.to_dict()
