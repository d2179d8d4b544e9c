"""Org admins manage their organization's staff users."""

from flask import Blueprint

bp = Blueprint("users", __name__)

from portal.users import views  # noqa: E402,F401
