"""Events from other services: signed ingestion, durable inbox, processing in the worker."""

from flask import Blueprint

from portal.events.labels import LABELS
from portal.formatting import labels_register

bp = Blueprint("events", __name__)
labels_register(bp, LABELS)

from portal.events import views  # noqa: E402,F401
