"""Error pages and JSON errors in Spanish; no stack trace ever reaches a user."""

import logging

from flask import Flask, Response, json, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from portal.extensions import db

log = logging.getLogger(__name__)

MESSAGES = {
    400: "La solicitud no es válida.",
    403: "No tiene permiso para ver esta página.",
    404: "No encontramos lo que busca.",
    405: "Método no permitido.",
    413: "La solicitud es demasiado grande.",
    429: "Demasiados intentos. Espere unos minutos e intente de nuevo.",
    500: "Ocurrió un error inesperado. Ya quedó registrado; intente de nuevo.",
}
# The versioned API answers every error as an RFC 9457 problem with a stable code.
PROBLEM_API_PREFIX = "/api/v1/"
PROBLEM_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
}
PROBLEM_TYPE = "/api/v1/docs#problem-{}"


class Problem(Exception):
    """An API refusal: HTTP status, a stable machine code, a Spanish detail, optional members."""

    def __init__(self, status: int, code: str, detail: str, **members):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.members = members

    def body(self) -> dict:
        """The problem details object (RFC 9457) with the portal's `code` member."""
        return {
            "type": PROBLEM_TYPE.format(self.code),
            "title": self.code.replace("_", " ").capitalize(),
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        } | self.members


def problem_response(body: dict, headers: dict | None = None) -> Response:
    """A problem details body as application/problem+json."""
    return Response(
        json.dumps(body),
        status=body["status"],
        mimetype="application/problem+json",
        headers=headers,
    )


def _http_problem(status: int) -> Response:
    status = status if status in PROBLEM_CODES else 400
    return problem_response(
        Problem(status, PROBLEM_CODES[status], MESSAGES.get(status, MESSAGES[400])).body()
    )


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(status: int, message: str | None = None):
    """A JSON or HTML error with a Spanish message, rendered after a rollback.

    The failed request may have left the session's transaction broken; the error page's
    template and context processors query the database, so they get a clean transaction.
    """
    db.session.rollback()
    if request.path.startswith(PROBLEM_API_PREFIX):
        return _http_problem(status)
    message = message or MESSAGES.get(status, MESSAGES[400])
    if _wants_json():
        return jsonify(error=message, status=status), status
    return render_template("errors/error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    """Register handlers for every HTTP error, CSRF failures and unexpected exceptions."""

    @app.errorhandler(Problem)
    def problem(error: Problem):
        db.session.rollback()
        return problem_response(error.body())

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return error_response(400, "El formulario expiró o no es válido. Recargue la página.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if isinstance(error, InternalServerError):
            return unexpected_error(error)
        if error.response is not None and not request.path.startswith(PROBLEM_API_PREFIX):
            return error.response  # e.g. a rate limit's own Spanish page
        return error_response(error.code or 400)

    @app.errorhandler(Exception)
    def unexpected_error(error):
        log.exception("unhandled error")
        return error_response(500)
