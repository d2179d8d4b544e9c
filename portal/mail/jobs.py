"""Worker side of e-mail: deliver the organization's due messages, and the sweeper that queues
that job for every organization with mail due (or a claim whose worker died)."""

import logging

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from portal.credit.statements import statement_pdf
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
        try:
            pdf = _statement(row)
        except Exception as error:  # never handed over: retried like a server that was down
            log.exception("statement not rendered", extra={"outbox_id": str(row.outbox_id)})
            state = outbox_failed(
                outbox_id=row.outbox_id,
                attempts=row.attempts,
                error=f"No se pudo generar el estado de cuenta: {error}",
                permanent=False,
            )
            outcome["failed" if state == "failed" else "retrying"] += 1
            continue
        message = message_build(
            outbox_id=row.outbox_id,
            sender=config["MAIL_FROM"],
            to_address=row.to_address,
            subject=row.subject,
            body=row.body,
            pdf=pdf,
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


def _statement(row) -> tuple[str, bytes] | None:
    """The account statement a claimed message carries, rendered now (None: it carries none);
    its reads end here, so no transaction stays open while talking to the server."""
    if row.statement_end is None:
        return None
    try:
        return statement_pdf(
            row.credit_account_id, start=row.statement_start, end=row.statement_end
        )
    finally:
        db.session.rollback()


def outbox_deliver_soon() -> None:
    """Queue the current organization's delivery job for the messages just committed (with
    Redis down, the sweeper finds them within the minute)."""
    try:
        enqueue_scoped(DELIVER_JOB, organization_id=current_organization_id())
    except RedisError:
        log.warning("e-mail delivery not queued", extra={"org": str(current_organization_id())})


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
