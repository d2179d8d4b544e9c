"""Signed ingestion: verify, parse strictly, validate envelopes, write the inbox, then enqueue."""

import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from portal.auth.models import Organization
from portal.db import organization_scope
from portal.events.models import EVENT_TYPES, InboxEvent
from portal.extensions import db
from portal.tasks import enqueue_scoped
from portal.transaction import atomic

log = logging.getLogger(__name__)

MAX_EVENTS = 1000
MAX_SKEW_SECONDS = 300
MAX_DEPTH = 12
MAX_FUTURE = timedelta(minutes=5)
# A JSON string literal (escapes included), and the characters that open or close a level. The
# closing quote is optional so an unterminated string ends the scan instead of making it
# quadratic; such a body is malformed JSON anyway.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
# PostgreSQL text and jsonb cannot hold NUL, and a lone surrogate is not encodable text. Strict
# JSON can only spell them as \u escapes, so a body without such an escape needs no closer look.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


class IngestError(ValueError):
    """A refused request: an HTTP status and a message for the sender."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Envelope:
    """A validated event envelope."""

    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    organization_id: uuid.UUID
    data: dict
    payload: dict
    payload_hash: str
    payload_json: str  # the canonical text that was hashed; stored as the jsonb payload


@dataclass(frozen=True)
class SigningKey:
    """The secret a request is verified with, and the one organization it may speak for."""

    secret: str
    organization_id: uuid.UUID | None  # None: the global EVENTS_SECRET, any organization

    def authorize(self, envelopes: list[Envelope]) -> None:
        """Refuse the batch if an organization key signed another organization's event."""
        for position, envelope in enumerate(envelopes):
            if self.organization_id and envelope.organization_id != self.organization_id:
                raise IngestError(
                    403, f"Evento {position}: la clave X-Key-Id es de otra organización."
                )


def body_read(stream, *, content_length: int | None, limit: int) -> bytes:
    """The raw body, refused (413) past `limit` bytes whether announced or chunked."""
    too_large = IngestError(413, f"El cuerpo supera {limit // (1024 * 1024)} MB.")
    if (content_length or 0) > limit:
        raise too_large
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(64 * 1024)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise too_large
    return b"".join(chunks)


def signing_key(*, key_id: str | None, global_secret: str | None) -> SigningKey:
    """The active key named by X-Key-Id, or the global secret when the header is absent."""
    if key_id is None:
        if not global_secret:
            raise IngestError(401, "Falta la cabecera X-Key-Id.")
        return SigningKey(global_secret, None)
    unknown = IngestError(401, "Clave X-Key-Id desconocida o revocada.")
    try:
        key_uuid = uuid.UUID(key_id)
    except ValueError:
        raise unknown from None
    row = db.session.execute(
        sa.text("SELECT organization_id, secret FROM event_key_lookup(:key_id)"),
        {"key_id": key_uuid},
    ).first()
    if row is None:
        raise unknown
    return SigningKey(row.secret, row.organization_id)


def signature_for(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Signature value for a body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(*, secret: str, timestamp: str | None, signature: str | None, body: bytes):
    """Refuse unsigned, badly signed or stale requests."""
    if not timestamp or not signature:
        raise IngestError(401, "Faltan las cabeceras X-Timestamp y X-Signature.")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise IngestError(401, "X-Timestamp debe ser un número de segundos Unix.")
    if abs(time.time() - int(timestamp)) > MAX_SKEW_SECONDS:
        raise IngestError(401, "La solicitud está vencida (más de 5 minutos).")
    if not hmac.compare_digest(signature_for(secret, timestamp, body), signature):
        raise IngestError(401, "Firma inválida.")


def _no_duplicate_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise IngestError(400, "El JSON tiene claves duplicadas.")
    return dict(pairs)


def _refuse_constant(name):
    raise IngestError(400, f"Valor JSON no permitido: {name}.")


def _nesting_depth(text: str) -> int:
    """How deeply the JSON text nests, counted without recursion (and before parsing it)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _has_unstorable_text(document) -> bool:
    """Whether any key or string value holds NUL or a lone surrogate (walked with a stack)."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and _UNSTORABLE.search(value):
            return True
    return False


def parse_body(body: bytes) -> list[dict]:
    """A list of raw event objects from a strict JSON body (one event or an array)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise IngestError(400, "El cuerpo no es UTF-8 válido.") from None
    if _nesting_depth(text) > MAX_DEPTH:
        raise IngestError(400, "El JSON está demasiado anidado.")
    try:
        document = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_refuse_constant
        )
    except RecursionError:
        raise IngestError(400, "El JSON está demasiado anidado.") from None
    except json.JSONDecodeError as error:
        raise IngestError(400, f"JSON mal formado: {error.msg} (posición {error.pos}).") from None
    events = document if isinstance(document, list) else [document]
    if not events:
        raise IngestError(400, "El lote está vacío.")
    if len(events) > MAX_EVENTS:
        raise IngestError(413, f"Máximo {MAX_EVENTS} eventos por solicitud.")
    if _UNSTORABLE_ESCAPE.search(text) and _has_unstorable_text(document):
        raise IngestError(400, "El JSON contiene caracteres no permitidos (NUL o sustitutos).")
    return events


def _field(raw: dict, name: str, kind, position: int):
    value = raw.get(name)
    if not isinstance(value, kind):
        raise IngestError(400, f"Evento {position}: falta '{name}' o no es del tipo correcto.")
    return value


def validate_envelope(raw, position: int) -> Envelope:
    """Check one envelope: every field present and of the right type, a known event type."""
    if not isinstance(raw, dict):
        raise IngestError(400, f"Evento {position}: debe ser un objeto JSON.")
    try:
        event_id = uuid.UUID(_field(raw, "event_id", str, position))
        organization_id = uuid.UUID(_field(raw, "organization_id", str, position))
    except ValueError:
        raise IngestError(
            400, f"Evento {position}: event_id y organization_id deben ser UUID."
        ) from None
    event_type = _field(raw, "event_type", str, position)
    if event_type not in EVENT_TYPES:
        raise IngestError(
            400, f"Evento {position}: tipo de evento desconocido '{event_type[:100]}'."
        )
    try:
        occurred_at = datetime.fromisoformat(_field(raw, "occurred_at", str, position))
    except ValueError:
        raise IngestError(
            400, f"Evento {position}: occurred_at no es una fecha ISO 8601."
        ) from None
    if occurred_at.tzinfo is None:
        raise IngestError(400, f"Evento {position}: occurred_at debe incluir la zona horaria.")
    if occurred_at > datetime.now(UTC) + MAX_FUTURE:
        raise IngestError(
            400, f"Evento {position}: occurred_at está más de 5 minutos en el futuro."
        )
    data = _field(raw, "data", dict, position)
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Envelope(
        event_id,
        event_type,
        occurred_at,
        organization_id,
        data,
        raw,
        hashlib.sha256(canonical.encode()).hexdigest(),
        canonical,
    )


# One statement per organization and batch: unnest() arrays, not a 1,000-row VALUES list
# (compiling that list was most of the request's time, docs/benchmarks-worker.md).
_INBOX_INSERT = sa.text(
    """
    INSERT INTO event_inbox (organization_id, event_id, event_type, occurred_at, payload,
                             payload_hash)
    SELECT :org, event_id, event_type, occurred_at, payload, payload_hash
    FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]), CAST(:times AS timestamptz[]),
                CAST(:payloads AS jsonb[]), CAST(:hashes AS text[]))
         AS e(event_id, event_type, occurred_at, payload, payload_hash)
    ON CONFLICT (organization_id, event_id) DO NOTHING
    RETURNING event_id
    """
)


@atomic
def inbox_accept(*, envelopes: list[Envelope], key: SigningKey) -> list[dict]:
    """Write a batch the key may speak for into the inbox as one unit; a refusal writes nothing."""
    key.authorize(envelopes)
    return inbox_write(envelopes)


def inbox_write(envelopes: list[Envelope]) -> list[dict]:
    """Store the events (idempotent per event id) in their organizations' scopes; one transaction.

    A redelivered event is a duplicate; an event id reused with another payload is refused (409).
    """
    by_organization: dict[uuid.UUID, list[Envelope]] = defaultdict(list)
    for envelope in envelopes:
        by_organization[envelope.organization_id].append(envelope)
    results: dict[uuid.UUID, str] = {}
    for organization_id, group in by_organization.items():
        with organization_scope(organization_id):
            if db.session.get(Organization, organization_id) is None:
                raise IngestError(422, f"Organización desconocida: {organization_id}.")
            inserted = set(
                db.session.scalars(
                    _INBOX_INSERT,
                    {
                        "org": organization_id,
                        "ids": [e.event_id for e in group],
                        "types": [e.event_type for e in group],
                        "times": [e.occurred_at for e in group],
                        "payloads": [e.payload_json for e in group],
                        "hashes": [e.payload_hash for e in group],
                    },
                )
            )
            stored = dict(
                db.session.execute(
                    sa.select(InboxEvent.event_id, InboxEvent.payload_hash).where(
                        InboxEvent.event_id.in_(
                            [e.event_id for e in group if e.event_id not in inserted]
                        )
                    )
                ).all()
            )
            for envelope in group:
                if envelope.event_id in inserted:
                    results[envelope.event_id] = "accepted"
                elif stored.get(envelope.event_id) == envelope.payload_hash:
                    results[envelope.event_id] = "duplicate"
                else:
                    raise IngestError(
                        409, f"El evento {envelope.event_id} ya existe con otro contenido."
                    )
    return [{"event_id": str(e.event_id), "status": results[e.event_id]} for e in envelopes]


def inbox_enqueue(envelopes: list[Envelope], results: list[dict]) -> None:
    """Queue the accepted events, one job per organization; if Redis is down the sweeper will."""
    accepted = {item["event_id"] for item in results if item["status"] == "accepted"}
    by_organization: dict[uuid.UUID, list[str]] = defaultdict(list)
    for envelope in envelopes:
        if str(envelope.event_id) in accepted:
            by_organization[envelope.organization_id].append(str(envelope.event_id))
    for organization_id, event_ids in by_organization.items():
        try:
            enqueue_scoped(
                "portal.events.jobs:process_events",
                organization_id=organization_id,
                event_ids=event_ids,
            )
        except Exception:
            log.warning("events accepted but not queued", extra={"count": len(event_ids)})
