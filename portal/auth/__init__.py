"""Staff login and logout; who may do what."""

from flask import Blueprint
from flask_login import current_user

from portal.auth.labels import LABELS
from portal.auth.permissions import can
from portal.formatting import labels_register

bp = Blueprint("auth", __name__)
labels_register(bp, LABELS)


@bp.app_template_global("can")
def current_user_can(action: str) -> bool:
    """Templates ask `can('credit.approve')` of the logged-in user, never for roles."""
    return can(current_user, action)


from portal.auth import views  # noqa: E402,F401
