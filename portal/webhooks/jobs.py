"""Worker side of webhooks: claim due deliveries with a lease, POST them signed, record each try.

No transaction stays open during HTTP. A claim moves the delivery's next attempt a lease ahead
and commits; a worker killed mid-request leaves it pending, and once the lease has passed the
sweeper queues it again. The event id never changes, so a receiver that dedupes by it applies
the event exactly once.
"""

import ipaddress
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections import defaultdict
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from portal.db import current_organization_id
from portal.events.ingest import signature_for
from portal.extensions import db
from portal.tasks import enqueue_scoped
from portal.transaction import atomic
from portal.webhooks.models import WebhookAttempt

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
# Seconds to wait after the n-th failed attempt (the last figure repeats).
BACKOFF_SECONDS = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600)
CLAIM_LIMIT = 100

_CLAIM = sa.text(
    """
    WITH due AS (
        SELECT delivery_id FROM webhook_deliveries
        WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE webhook_deliveries d
    SET next_attempt_at = now() + make_interval(secs => :lease)
    FROM due, webhook_subscriptions s, outbox_events e
    WHERE d.delivery_id = due.delivery_id
      AND s.subscription_id = d.subscription_id AND e.event_id = d.event_id
    RETURNING d.delivery_id, d.attempts, s.subscription_id, s.url, s.secret,
              e.event_id, e.event_type, e.occurred_at, e.data
    """
)
_DELIVERED = sa.text(
    """
    UPDATE webhook_deliveries
    SET status = 'delivered', delivered_at = now(), attempts = attempts + 1,
        last_status_code = :status_code, last_error = NULL
    WHERE delivery_id = :delivery_id AND status = 'pending'
    """
)
_FAILED = sa.text(
    """
    UPDATE webhook_deliveries
    SET attempts = attempts + 1, last_status_code = :status_code, last_error = :error,
        status = CASE WHEN attempts + 1 >= :max_attempts THEN 'failed' ELSE 'pending' END,
        next_attempt_at = now() + make_interval(secs => :backoff)
    WHERE delivery_id = :delivery_id AND status = 'pending'
    """
)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other non-2xx: the delivery is retried, never moved."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects)


def backoff_seconds(attempts: int) -> int:
    """How long to wait after `attempts` failed attempts."""
    return BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1]


def target_refusal(url: str, *, allow_private: bool) -> str | None:
    """Why a URL may not receive webhooks (private addresses outside development), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "URL inválida"
    if allow_private:
        return None
    if parts.scheme != "https":
        return "solo se permiten URL https"
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except OSError:
        return "no se pudo resolver el servidor"
    if any(not ipaddress.ip_address(address).is_global for address in addresses):
        return "la URL apunta a una dirección privada"
    return None


def envelope_body(row) -> bytes:
    """The event as sent: the same envelope as inbound events."""
    envelope = {
        "event_id": str(row.event_id),
        "event_type": row.event_type,
        "occurred_at": row.occurred_at.isoformat(),
        "organization_id": str(current_organization_id()),
        "data": row.data,
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def _post(row) -> tuple[int | None, str | None]:
    config = current_app.config
    refusal = target_refusal(row.url, allow_private=config["WEBHOOK_ALLOW_PRIVATE"])
    if refusal:
        return None, refusal
    body = envelope_body(row)
    timestamp = str(int(time.time()))
    # target_refusal above admits only http(s) URLs.
    request = urllib.request.Request(  # noqa: S310
        row.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "cs-portal-webhooks/1",
            "X-Key-Id": str(row.subscription_id),
            "X-Event-Id": str(row.event_id),
            "X-Event-Type": row.event_type,
            "X-Timestamp": timestamp,
            "X-Signature": signature_for(row.secret, timestamp, body),
        },
    )
    try:
        with _OPENER.open(request, timeout=config["WEBHOOK_TIMEOUT_SECONDS"]) as response:
            return response.status, None
    except urllib.error.HTTPError as error:
        return error.code, f"HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        return None, str(getattr(error, "reason", error))[:500]


@atomic
def delivery_attempt_record(
    *, delivery_id, attempts: int, status_code: int | None, error: str | None, duration_ms: int
) -> bool:
    """Log one attempt and move the delivery on: delivered, retried later, or failed."""
    db.session.add(
        WebhookAttempt(
            delivery_id=delivery_id, status_code=status_code, error=error, duration_ms=duration_ms
        )
    )
    delivered = status_code is not None and 200 <= status_code < 300
    if delivered:
        db.session.execute(_DELIVERED, {"delivery_id": delivery_id, "status_code": status_code})
    else:
        db.session.execute(
            _FAILED,
            {
                "delivery_id": delivery_id,
                "status_code": status_code,
                "error": error or f"HTTP {status_code}",
                "max_attempts": MAX_ATTEMPTS,
                "backoff": backoff_seconds(attempts + 1),
            },
        )
    return delivered


def webhooks_deliver_due() -> dict:
    """Job: deliver the organization's due webhooks (a batch; the sweeper queues the rest)."""
    rows = db.session.execute(
        _CLAIM,
        {"limit": CLAIM_LIMIT, "lease": current_app.config["WEBHOOK_LEASE_SECONDS"]},
    ).all()
    db.session.commit()  # the lease holds from here: no transaction stays open during HTTP
    outcome = defaultdict(int)
    for row in rows:
        started = time.monotonic()
        status_code, error = _post(row)
        delivered = delivery_attempt_record(
            delivery_id=row.delivery_id,
            attempts=row.attempts,
            status_code=status_code,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        outcome["delivered" if delivered else "retrying"] += 1
    if rows:
        log.info("webhooks attempted", extra=dict(outcome))
    return dict(outcome)


def webhooks_sweep() -> int:
    """Scheduled: queue a delivery job for every organization with due deliveries."""
    due = (
        db.session.execute(sa.text("SELECT DISTINCT organization_id FROM webhook_deliveries_due()"))
        .scalars()
        .all()
    )
    db.session.rollback()
    for organization_id in due:
        enqueue_scoped("portal.webhooks.jobs:webhooks_deliver_due", organization_id=organization_id)
    return len(due)
