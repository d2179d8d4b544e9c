"""Error pages and JSON errors in Spanish; no stack trace ever reaches a user."""

import logging

from flask import Flask, jsonify, render_template, request
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


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(status: int, message: str | None = None):
    """A JSON or HTML error with a Spanish message, rendered after a rollback.

    The failed request may have left the session's transaction broken; the error page's
    template and context processors query the database, so they get a clean transaction.
    """
    db.session.rollback()
    message = message or MESSAGES.get(status, MESSAGES[400])
    if _wants_json():
        return jsonify(error=message, status=status), status
    return render_template("errors/error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    """Register handlers for every HTTP error, CSRF failures and unexpected exceptions."""

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return error_response(400, "El formulario expiró o no es válido. Recargue la página.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if isinstance(error, InternalServerError):
            return unexpected_error(error)
        if error.response is not None:  # e.g. a rate limit's own Spanish page
            return error.response
        return error_response(error.code or 400)

    @app.errorhandler(Exception)
    def unexpected_error(error):
        log.exception("unhandled error")
        return error_response(500)
