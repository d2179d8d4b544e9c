"""POST /api/events (HMAC-signed, no session) and the inbox page for org admins."""

import uuid

from flask import abort, current_app, flash, jsonify, redirect, request, url_for
from flask_login import current_user

from portal.auth.permissions import permission_required
from portal.events import bp
from portal.events.forms import InboxFilterForm
from portal.events.ingest import (
    IngestError,
    body_read,
    inbox_accept,
    inbox_enqueue,
    parse_body,
    signing_key,
    validate_envelope,
    verify_signature,
)
from portal.events.models import INBOX_STATUSES
from portal.events.selectors import inbox_counts, inbox_recent
from portal.events.services import inbox_retry
from portal.extensions import csrf
from portal.htmx import INVALID, render

MAX_BODY = 1024 * 1024


@bp.post("/api/events")
@csrf.exempt
def ingest():
    """Accept one event or a batch of up to 1,000, signed with HMAC-SHA256 (no session).

    X-Key-Id names an organization's own key; without it the global EVENTS_SECRET applies.
    """
    try:
        body = body_read(request.stream, content_length=request.content_length, limit=MAX_BODY)
        key = signing_key(
            key_id=request.headers.get("X-Key-Id"),
            global_secret=current_app.config["EVENTS_SECRET"],
        )
        verify_signature(
            secret=key.secret,
            timestamp=request.headers.get("X-Timestamp"),
            signature=request.headers.get("X-Signature"),
            body=body,
        )
        envelopes = [validate_envelope(raw, index) for index, raw in enumerate(parse_body(body))]
        results = inbox_accept(envelopes=envelopes, key=key)
    except IngestError as error:
        return jsonify(error=str(error), status=error.status), error.status
    inbox_enqueue(envelopes, results)
    return jsonify(results=results), 202


@bp.get("/events/")
@permission_required("events.manage")
def inbox():
    """Counts by state, the latest events (filtered by type, state and date) with their data
    as fields, and dead letters with their reasons."""
    form = InboxFilterForm(request.args)
    valid = form.validate()
    return render(
        "events/inbox.html",
        status=200 if valid else INVALID,
        form=form,
        counts=inbox_counts(),
        rows=inbox_recent(form.filters()) if valid else [],
        statuses=INBOX_STATUSES,
    )


@bp.post("/events/retry")
@permission_required("events.manage")
def retry():
    """Retry one dead letter (event_id) or all of them."""
    event_id = request.form.get("event_id")
    try:
        ids = [uuid.UUID(event_id)] if event_id else None
    except ValueError:
        abort(400)
    count = inbox_retry(event_ids=ids, actor=current_user)
    flash(
        f"{count} evento(s) reenviado(s) a procesamiento." if count else "Nada que reintentar.",
        "success" if count else "info",
    )
    return redirect(url_for("events.inbox", status="dead"), 303)
