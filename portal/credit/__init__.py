"""Credit: requests and approvals, usages, payments, statements and aging."""

from flask import Blueprint

bp = Blueprint("credit", __name__)


@bp.app_context_processor
def pending_requests_badge() -> dict:
    """The approval queue's size, for the navigation badge of approvers."""
    from flask_login import current_user

    from portal.credit.services import credit_queue_count

    if current_user.is_authenticated and current_user.has_role("credit_approver"):
        return {"pending_credit_requests": credit_queue_count()}
    return {}


from portal.credit import views  # noqa: E402,F401
