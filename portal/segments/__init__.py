"""RFM segments: recomputed set-based in PostgreSQL, shown as a distribution with drill-down."""

from flask import Blueprint

bp = Blueprint("segments", __name__)

from portal.segments import views  # noqa: E402,F401
