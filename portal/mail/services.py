"""Writing to the outbox (inside the caller's transaction) and recording each delivery step.

Delivery is at most once per outbox row. The worker commits its claim (`sending`) before it
connects, `data_started_at` just before it hands the message over (SMTP DATA), and `sent` after
the server's answer. If the worker dies before DATA, no server has the message: the claim goes
back to pending once its lease has passed. If it dies after, the server may have accepted it:
the row is marked failed (shown on the account) and never sent again — a lost reminder is
recoverable by staff, a duplicate is not. The Message-ID is the outbox id, so a receiver that
dedupes by it would also drop a copy sent by hand.
"""

import uuid
from datetime import timedelta

import sqlalchemy as sa

from portal.db import current_organization_id
from portal.extensions import db
from portal.mail.models import EmailOutbox
from portal.transaction import atomic

MAX_ATTEMPTS = 6
# Seconds to wait after the n-th failed attempt (the last figure repeats).
BACKOFF_SECONDS = (60, 300, 900, 3600, 3 * 3600)
CLAIM_LIMIT = 50
INTERRUPTED = "Envío interrumpido después de entregar el mensaje al servidor: puede haber llegado."


@atomic
def outbox_add(*, messages: list[dict]) -> list[uuid.UUID]:
    """Queue messages (to_address, subject, body, credit_account_id, and send_id or
    statement_start/statement_end/idempotency_key) in the caller's transaction; their outbox
    ids."""
    rows = [
        {"organization_id": current_organization_id(), "outbox_id": uuid.uuid4()} | message
        for message in messages
    ]
    if rows:
        db.session.execute(sa.insert(EmailOutbox), rows)
    return [row["outbox_id"] for row in rows]


@atomic
def outbox_recover(*, lease_seconds: int) -> dict:
    """Claims older than the lease (their worker died): back to pending if the message was never
    handed over, failed otherwise (it may have arrived; it is never sent twice)."""
    recovered = (
        db.session.execute(
            sa.text(
                """
            UPDATE email_outbox
            SET state = CASE WHEN data_started_at IS NULL THEN 'pending' ELSE 'failed' END,
                last_error = CASE WHEN data_started_at IS NULL THEN last_error ELSE :error END,
                next_attempt_at = now()
            WHERE state = 'sending' AND claimed_at < now() - make_interval(secs => :lease)
            RETURNING state
            """
            ),
            {"lease": lease_seconds, "error": INTERRUPTED},
        )
        .scalars()
        .all()
    )
    return {"retried": recovered.count("pending"), "failed": recovered.count("failed")}


@atomic
def outbox_claim(*, outbox_id: uuid.UUID | None = None, limit: int = CLAIM_LIMIT) -> list:
    """Claim due messages (or the one given, if due) for this worker: committed as `sending`
    before any connection, so no other worker takes them."""
    only = "AND outbox_id = :outbox_id" if outbox_id else ""
    return db.session.execute(
        sa.text(
            f"""
            WITH due AS (
                SELECT outbox_id FROM email_outbox
                WHERE state = 'pending' AND next_attempt_at <= now() {only}
                ORDER BY next_attempt_at LIMIT :limit
                FOR UPDATE SKIP LOCKED
            )
            UPDATE email_outbox o
            SET state = 'sending', claimed_at = now(), attempts = o.attempts + 1,
                data_started_at = NULL
            FROM due WHERE o.outbox_id = due.outbox_id
            RETURNING o.outbox_id, o.to_address, o.subject, o.body, o.attempts,
                      o.credit_account_id, o.statement_start, o.statement_end
            """
        ),
        {"outbox_id": outbox_id, "limit": limit},
    ).all()


@atomic
def outbox_data_started(*, outbox_id: uuid.UUID) -> None:
    """The message is about to be handed over (SMTP DATA): from here a crash is uncertain."""
    db.session.execute(
        sa.update(EmailOutbox)
        .where(EmailOutbox.outbox_id == outbox_id, EmailOutbox.state == "sending")
        .values(data_started_at=sa.func.now())
    )


@atomic
def outbox_sent(*, outbox_id: uuid.UUID) -> None:
    """The server accepted the message."""
    db.session.execute(
        sa.update(EmailOutbox)
        .where(EmailOutbox.outbox_id == outbox_id, EmailOutbox.state == "sending")
        .values(state="sent", sent_at=sa.func.now(), last_error=None)
    )


def backoff_seconds(attempts: int) -> int:
    """How long to wait after `attempts` failed attempts."""
    return BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1]


@atomic
def outbox_failed(*, outbox_id: uuid.UUID, attempts: int, error: str, permanent: bool) -> str:
    """A refused or failed attempt: retried after a backoff, or failed for good (a permanent
    refusal, or the last attempt); the new state."""
    final = permanent or attempts >= MAX_ATTEMPTS
    state = "failed" if final else "pending"
    db.session.execute(
        sa.update(EmailOutbox)
        .where(EmailOutbox.outbox_id == outbox_id, EmailOutbox.state == "sending")
        .values(
            state=state,
            last_error=error[:1000],
            data_started_at=None,
            next_attempt_at=sa.func.now() + timedelta(seconds=backoff_seconds(attempts)),
        )
    )
    return state
