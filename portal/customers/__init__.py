"""Customers: search, profile, addresses."""

from flask import Blueprint

bp = Blueprint("customers", __name__)

from portal.customers import views  # noqa: E402,F401
