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
def navigation_badges() -> dict:
    """The approval queue's size (approvers) and the decisions on the user's own requests not
    yet seen (requesters), each read only if the page shows it: an htmx partial without the
    navigation costs no statement for them."""
    badges = {}
    if can(current_user, "credit.approve"):
        badges["pending_credit_requests"] = credit_queue_count
    if can(current_user, "credit.request"):
        user_id = current_user.staff_user_id
        badges["unseen_credit_decisions"] = lambda: decisions_unseen_count(user_id)
    return badges


from portal.credit import views  # noqa: E402,F401
