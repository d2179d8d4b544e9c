"""Customers: search, profile, addresses."""

from flask import Blueprint

from portal.customers.labels import LABELS
from portal.formatting import labels_register

bp = Blueprint("customers", __name__)
labels_register(bp, LABELS)

from portal.customers import views  # noqa: E402,F401
