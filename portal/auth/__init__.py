"""Staff login and logout; who may do what."""

from flask import Blueprint, g
from flask_login import current_user

from portal.auth.labels import LABELS
from portal.auth.permissions import can
from portal.formatting import labels_register

bp = Blueprint("auth", __name__)
labels_register(bp, LABELS)


@bp.app_template_global("can")
def current_user_can(action: str) -> bool:
    """Templates ask `can('credit.approve')` of the logged-in user, never for roles.

    Answered once per action and request: a 200-line ledger asks for every line (views check
    their permission on their own, with `permission_required`)."""
    answers = g.setdefault("permission_answers", {})
    if action not in answers:
        answers[action] = can(current_user, action)
    return answers[action]


from portal.auth import views  # noqa: E402,F401
