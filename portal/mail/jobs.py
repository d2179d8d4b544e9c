"""Worker side of e-mail: deliver the organization's due messages, and the sweeper that queues
that job for every organization with mail due (or a claim whose worker died)."""

import logging

import sqlalchemy as sa
from flask import current_app

from portal.db import current_organization_id
from portal.extensions import db
from portal.mail.services import (
    INTERRUPTED,
    outbox_claim,
    outbox_data_started,
    outbox_failed,
    outbox_recover,
    outbox_sent,
)
from portal.mail.smtp import DeliveryError, message_build, smtp_send
from portal.tasks import enqueue_scoped

log = logging.getLogger(__name__)
DELIVER_JOB = "portal.mail.jobs:outbox_deliver_due"


def outbox_deliver_due() -> dict:
    """Job: recover dead workers' claims, then claim and deliver the due messages one by one
    (no transaction stays open while talking to the server)."""
    config = current_app.config
    outcome = {"sent": 0, "retrying": 0, "failed": 0}
    recovered = outbox_recover(lease_seconds=config["EMAIL_LEASE_SECONDS"])
    outcome["failed"] += recovered["failed"]
    if not config["SMTP_URL"]:
        log.warning("SMTP_URL is not set: e-mail stays in the outbox")
        return outcome
    for row in outbox_claim():
        message = message_build(
            outbox_id=row.outbox_id,
            sender=config["MAIL_FROM"],
            to_address=row.to_address,
            subject=row.subject,
            body=row.body,
        )
        try:
            smtp_send(
                message,
                url=config["SMTP_URL"],
                timeout=config["SMTP_TIMEOUT_SECONDS"],
                handing_over=lambda outbox_id=row.outbox_id: outbox_data_started(
                    outbox_id=outbox_id
                ),
            )
        except DeliveryError as error:
            # Broken after the message was handed over: it may have arrived, never send again.
            state = outbox_failed(
                outbox_id=row.outbox_id,
                attempts=row.attempts,
                error=f"{INTERRUPTED} ({error})" if error.uncertain else str(error),
                permanent=error.permanent or error.uncertain,
            )
            outcome["failed" if state == "failed" else "retrying"] += 1
            continue
        outbox_sent(outbox_id=row.outbox_id)
        outcome["sent"] += 1
    if any(outcome.values()):
        log.info(
            "e-mail delivered", extra=outcome | {"organization": str(current_organization_id())}
        )
    return outcome


def outbox_sweep() -> int:
    """Scheduled: queue a delivery job for every organization with mail due."""
    due = db.session.scalars(
        sa.text("SELECT email_outbox_due(:lease)"),
        {"lease": current_app.config["EMAIL_LEASE_SECONDS"]},
    ).all()
    db.session.rollback()
    for organization_id in due:
        enqueue_scoped(DELIVER_JOB, organization_id=organization_id)
    return len(due)
