"""Bearer API keys: `csk_<prefix>_<secret>`, found by prefix, the secret checked in constant time.

The key's organization scopes the request exactly as a staff session does (set_organization);
cookies play no part. Only the SHA-256 of the secret is stored: the secret is 32 random bytes,
so a fast hash is as safe as a slow one and costs nothing per request.
"""

import hashlib
import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from limits import parse

from portal.audit import NamedActor
from portal.cache import cache_drop_on_commit
from portal.db import set_scope
from portal.errors import Problem
from portal.extensions import db, limiter
from portal.tasks import redis_connection

KEY_PATTERN = re.compile(r"csk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
# last_used_at is written at most this often per key (a write per request would be wasteful).
LAST_USE_RESOLUTION = timedelta(minutes=1)
_LOOKUP = sa.text(
    "SELECT organization_id, api_key_id, name, secret_hash, scopes, last_used_at"
    " FROM api_key_lookup(:prefix)"
)
# A key's row is kept in Redis this long (a request then needs no lookup statement); revoking
# or touching the key drops the copy when its transaction commits.
KEY_CACHE = "portal:api-key:{}"
KEY_CACHE_SECONDS = 60
UNAUTHORIZED = "Falta la clave API o no es válida (Authorization: Bearer <clave>)."


@dataclass(frozen=True)
class ApiCaller:
    """The key a request was authenticated with."""

    api_key_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    scopes: frozenset[str]
    prefix: str

    @property
    def actor(self) -> NamedActor:
        """Who the audit log says acted: the key, by name."""
        return NamedActor(f"api:{self.name}")


def key_generate() -> tuple[str, str, str]:
    """A new key: (the whole key shown once, its public prefix, the hash stored)."""
    return key_parts(f"csk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}")


def key_parts(key: str) -> tuple[str, str, str]:
    """(the whole key, its public prefix, the hash stored) of a well-formed key."""
    match = KEY_PATTERN.fullmatch(key)
    if match is None:
        raise ValueError("malformed API key")
    return key, match.group(1), secret_digest(match.group(2))


def secret_digest(secret: str) -> str:
    """What is stored for a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def bearer_authenticate(authorization: str | None) -> tuple[ApiCaller, bool]:
    """The caller named by an Authorization header, scoped; and whether its last use is stale.

    Any failure is the same 401, whether the key is malformed, unknown, revoked or wrong.
    """
    scheme, _, token = (authorization or "").partition(" ")
    match = KEY_PATTERN.fullmatch(token.strip()) if scheme.lower() == "bearer" else None
    row = _key_row(match.group(1)) if match else None
    if row is None or not hmac.compare_digest(secret_digest(match.group(2)), row["secret_hash"]):
        raise Problem(401, "unauthorized", UNAUTHORIZED)
    caller = ApiCaller(
        uuid.UUID(row["api_key_id"]),
        uuid.UUID(row["organization_id"]),
        row["name"],
        frozenset(row["scopes"]),
        match.group(1),
    )
    # The key's writes are audited in its name: stated with the organization, in one statement.
    set_scope(caller.organization_id, None, caller.actor.email)
    last_used = row["last_used_at"]
    stale = last_used is None or (
        datetime.now(UTC) - datetime.fromtimestamp(last_used, UTC) >= LAST_USE_RESOLUTION
    )
    return caller, stale


def _key_row(prefix: str) -> dict | None:
    """The active key with this prefix: its Redis copy, or api_key_lookup() (then copied)."""
    cached = redis_connection().get(KEY_CACHE.format(prefix))
    if cached is not None:
        return json.loads(cached)
    row = db.session.execute(_LOOKUP, {"prefix": prefix}).first()
    if row is None:
        return None
    values = {
        "organization_id": str(row.organization_id),
        "api_key_id": str(row.api_key_id),
        "name": row.name,
        "secret_hash": row.secret_hash,
        "scopes": list(row.scopes),
        "last_used_at": row.last_used_at.timestamp() if row.last_used_at else None,
    }
    redis_connection().set(KEY_CACHE.format(prefix), json.dumps(values), ex=KEY_CACHE_SECONDS)
    return values


def key_cache_drop(prefix: str) -> None:
    """The key changed (revoked, used): its copy goes when the change commits."""
    cache_drop_on_commit(db.session(), {KEY_CACHE.format(prefix)})


def rate_limit_hit(caller: ApiCaller) -> None:
    """Count the request against the key's limit (Flask-Limiter's storage); 429 past it."""
    limit = current_app.config["API_RATE_LIMIT"]
    if not limiter.limiter.hit(parse(limit), "api-key", str(caller.api_key_id)):
        raise Problem(
            429, "rate_limited", f"Demasiadas solicitudes con esta clave (límite {limit})."
        )


def scope_required(caller: ApiCaller, scope: str) -> None:
    """403 unless the key holds the scope."""
    if scope not in caller.scopes:
        raise Problem(403, "insufficient_scope", f"La clave API no tiene el permiso «{scope}».")
