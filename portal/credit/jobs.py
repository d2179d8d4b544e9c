"""Credit background jobs: the daily overdue pass, fanned out one job per organization."""

from datetime import date

import sqlalchemy as sa
from flask import current_app

from portal.collections.services import dunning_run, promises_settle
from portal.credit.fees import late_fees_post
from portal.credit.services import aging_months_record, aging_refresh_stale, usages_mark_overdue
from portal.db import current_organization_id
from portal.extensions import db
from portal.mail.jobs import DELIVER_JOB
from portal.tasks import enqueue_scoped


def overdue_sweep() -> int:
    """Scheduled daily (no organization): enqueue the overdue pass for every organization."""
    organizations = list(db.session.scalars(sa.text("SELECT organization_ids()")))
    db.session.rollback()
    for organization_id in organizations:
        enqueue_scoped("portal.credit.jobs:overdue_mark", organization_id=organization_id)
    return len(organizations)


def overdue_mark(today: str | None = None) -> dict:
    """One organization: mark past-due usages overdue, suspend accounts overdue too long, then
    (a transaction of its own, so it never waits on ledger writes while holding usages) move the
    aging rows to the new day, post the month's late fees (if the organization charges them) and
    record the month's aging for the dashboard, then settle the promises to pay due (kept or
    broken), then send the dunning levels reached (after the promises: a broken one no longer
    pauses them) and queue the delivery of their e-mails."""
    day = date.fromisoformat(today) if today else None
    result = usages_mark_overdue(
        today=day, suspend_after_days=current_app.config["OVERDUE_SUSPEND_DAYS"]
    )
    result |= {"aging_moved": aging_refresh_stale()}
    result |= {"late_fees": late_fees_post(today=day)}
    result |= {"aging_months": aging_months_record(today=day)}
    result |= {"promises": promises_settle(today=day)}
    result |= {"dunning": dunning_run(today=day)}
    if result["dunning"]["email"]:  # committed: the worker finds the outbox rows
        enqueue_scoped(DELIVER_JOB, organization_id=current_organization_id())
    return result
