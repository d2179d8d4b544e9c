"""Credit: requests and approvals, usages, payments, statements and aging."""

from flask import Blueprint
from flask_login import current_user

from portal.auth.permissions import can
from portal.credit.labels import LABELS
from portal.credit.selectors import credit_queue_count, customer_credit, decisions_unseen_count
from portal.formatting import labels_register

bp = Blueprint("credit", __name__)
labels_register(bp, LABELS)
# The customer page renders the credit panel (credit/_customer_*.html) with what this returns.
bp.add_app_template_global(customer_credit, "customer_credit")


@bp.app_context_processor
def pending_requests_badge() -> dict:
    """The approval queue's size, for the navigation badge of approvers."""
    if can(current_user, "credit.approve"):
        return {"pending_credit_requests": credit_queue_count()}
    return {}


@bp.app_context_processor
def unseen_decisions_badge() -> dict:
    """Decisions on the user's own requests not yet seen: read only if the page shows it."""
    if can(current_user, "credit.request"):
        user_id = current_user.staff_user_id
        return {"unseen_credit_decisions": lambda: decisions_unseen_count(user_id)}
    return {}


from portal.credit import views  # noqa: E402,F401
