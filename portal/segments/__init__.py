"""RFM segments: recomputed set-based in PostgreSQL, shown as a distribution with drill-down."""

from flask import Blueprint

from portal.formatting import labels_register
from portal.segments.labels import LABELS

bp = Blueprint("segments", __name__)
labels_register(bp, LABELS)

from portal.segments import views  # noqa: E402,F401
