"""The checkout API under /api/v1: bearer API keys, JSON in and out, RFC 9457 problems."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from portal.api import views  # noqa: E402,F401
