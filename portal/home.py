"""The home page: what needs the staff member today, by what their roles let them do."""

from dataclasses import dataclass, field

import sqlalchemy as sa

from portal import clock
from portal.auth.permissions import can
from portal.collections.models import CollectionPromise
from portal.credit.selectors import credit_queue_count, decisions_unseen_count
from portal.customers.models import Customer
from portal.customers.recent import recent_customers
from portal.events.selectors import inbox_counts
from portal.extensions import db


@dataclass(frozen=True)
class HomeSummary:
    """Each count is None when the user's roles do not include that work."""

    approvals_waiting: int | None = None
    decisions_unseen: int | None = None
    promises_due_today: int | None = None
    dead_letters: int | None = None
    recent_customers: list[Customer] = field(default_factory=list)


def promises_due_count(day) -> int:
    """Open promises to pay falling due on `day`."""
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(CollectionPromise)
        .where(CollectionPromise.state == "open", CollectionPromise.due_on == day)
    )


def home_summary(*, user) -> HomeSummary:
    """One count per kind of work the user's roles include (a statement each), recent customers."""
    counts = {}
    if can(user, "credit.approve"):
        counts["approvals_waiting"] = credit_queue_count()
    if can(user, "credit.request"):
        counts["decisions_unseen"] = decisions_unseen_count(user.staff_user_id)
    if can(user, "collections.work"):
        counts["promises_due_today"] = promises_due_count(clock.today())
    if can(user, "events.manage"):
        counts["dead_letters"] = inbox_counts().get("dead", 0)
    return HomeSummary(**counts, recent_customers=recent_customers(user=user))
