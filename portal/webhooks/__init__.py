"""Outbound events: an outbox written with each change, delivered as signed webhooks."""

from flask import Blueprint

from portal.formatting import labels_register
from portal.webhooks.labels import LABELS

bp = Blueprint("webhooks", __name__)
labels_register(bp, LABELS)

from portal.webhooks import views  # noqa: E402,F401
