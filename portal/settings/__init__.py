"""Organization settings: typed, one row per organization, edited by org admins."""

from flask import Blueprint

bp = Blueprint("settings", __name__)

from portal.settings import views  # noqa: E402,F401
