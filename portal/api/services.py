"""API writes: keys (created, revoked, last use) and idempotent charges and cancellations.

Charges and cancellations go through the credit feature's own services (usage_charge,
usage_cancel), so the ledger rules live in one place; this module adds the API's idempotency.
"""

import hashlib
import json
import uuid
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from portal.api.auth import ApiCaller, key_cache_drop, key_generate, key_parts
from portal.api.models import ApiKey, IdempotencyRecord
from portal.api.schemas import ChargeSchema
from portal.api.selectors import charge_body, charge_find, charge_target
from portal.audit import Actor, audit_record
from portal.credit.services import (
    CreditError,
    usage_cancel,
    usage_charge,
    usage_get,
)
from portal.db import current_organization_id
from portal.errors import Problem
from portal.extensions import db
from portal.transaction import atomic

# A refusal the order service may act on, and the HTTP status it is answered with.
REFUSAL_STATUS = {"order_already_charged": 409}


@atomic
def api_key_create(
    *, name: str, scopes: list[str], actor: Actor, key: str | None = None
) -> tuple[ApiKey, str]:
    """A new key of the current organization; the whole key is returned only now.

    `key` installs a given key (the demo's published one) instead of a new random one.
    """
    key, prefix, digest = key_parts(key) if key else key_generate()
    api_key_id = uuid.uuid4()
    db.session.execute(
        sa.insert(ApiKey).values(
            organization_id=current_organization_id(),
            api_key_id=api_key_id,
            name=name,
            prefix=prefix,
            secret_hash=digest,
            scopes=scopes,
            created_by=actor.staff_user_id,
        )
    )
    audit_record(
        action="api.key_created",
        entity_type="api_key",
        entity_id=api_key_id,
        after={"name": name, "prefix": prefix, "scopes": scopes},
        actor=actor,
    )
    return api_key_get(api_key_id), key


def api_key_get(api_key_id: uuid.UUID) -> ApiKey | None:
    """One key of the current organization, without its hash (the app role cannot read it)."""
    return db.session.scalar(sa.select(ApiKey).where(ApiKey.api_key_id == api_key_id))


@atomic
def api_key_revoke(*, api_key_id: uuid.UUID, actor: Actor) -> ApiKey:
    """Revoke an active key at once; its next request is refused."""
    revoked = db.session.execute(
        sa.update(ApiKey)
        .where(ApiKey.api_key_id == api_key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=sa.func.now(), revoked_by=actor.staff_user_id)
        .returning(ApiKey.name, ApiKey.prefix)
    ).first()
    if revoked is None:
        raise LookupError(api_key_id)
    key_cache_drop(revoked.prefix)
    audit_record(
        action="api.key_revoked",
        entity_type="api_key",
        entity_id=api_key_id,
        after={"name": revoked.name},
        actor=actor,
    )
    return api_key_get(api_key_id)


@atomic
def api_key_touch(*, caller: ApiCaller) -> None:
    """Note the key's last use (called at most once a minute per key)."""
    db.session.execute(
        sa.update(ApiKey)
        .where(ApiKey.api_key_id == caller.api_key_id)
        .values(last_used_at=sa.func.now())
    )
    key_cache_drop(caller.prefix)


def request_digest(body: dict) -> str:
    """A digest of a request body that ignores key order and spacing."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@atomic
def api_charge_create(
    *,
    caller: ApiCaller,
    idempotency_key: str,
    customer_id: uuid.UUID,
    order_id: uuid.UUID,
    order_number: str,
    amount: Decimal,
) -> tuple[int, dict, bool]:
    """Charge an order once per Idempotency-Key: (status, body, replayed).

    The key's row is inserted first: a concurrent request with the same key waits on it, then
    replays the answer stored with it. A refusal (e.g. insufficient_credit) is an answer too.
    """
    digest = request_digest(
        {
            "customer_id": customer_id,
            "order_id": order_id,
            "order_number": order_number,
            "amount": amount,
        }
    )
    inserted = db.session.scalar(
        pg_insert(IdempotencyRecord)
        .values(
            organization_id=current_organization_id(),
            idempotency_key=idempotency_key,
            api_key_id=caller.api_key_id,
            request_hash=digest,
            order_number=order_number,
        )
        .on_conflict_do_nothing(index_elements=["organization_id", "idempotency_key"])
        .returning(IdempotencyRecord.idempotency_key)
    )
    if inserted is None:
        record = db.session.scalar(
            sa.select(IdempotencyRecord).where(IdempotencyRecord.idempotency_key == idempotency_key)
        )
        if record.request_hash != digest:
            raise Problem(
                409,
                "idempotency_key_reused",
                "Esta Idempotency-Key ya se usó con otro cuerpo de solicitud.",
            )
        return record.status_code, record.response, True
    found, account = charge_target(customer_id)
    if not found:
        raise Problem(404, "customer_not_found", "No existe un cliente con ese id.")
    usage_id = None
    try:
        if account is None:
            raise CreditError(
                "El cliente no tiene cuenta de crédito.", "customer_id", "account_not_approved"
            )
        usage, created = usage_charge(
            account_id=account.credit_account_id,
            order_id=order_id,
            amount=amount,
            actor=caller.actor,
            order_number=order_number,
        )
    except CreditError as error:
        status = REFUSAL_STATUS.get(error.code, 422)
        body = Problem(status, error.code, str(error)).body()
    else:
        # The account was refreshed by the charge (the same instance): no read needed here,
        # where the audit chain is already locked until the commit.
        usage_id, status = usage.usage_id, (201 if created else 200)
        body = ChargeSchema().dump(charge_body(usage, account, order_number))
    db.session.execute(
        sa.update(IdempotencyRecord)
        .where(IdempotencyRecord.idempotency_key == idempotency_key)
        .values(usage_id=usage_id, status_code=status, response=body)
    )
    return status, body, False


@atomic
def api_charge_cancel(*, caller: ApiCaller, usage_id: uuid.UUID) -> dict:
    """Cancel a pending charge (the staff rule); cancelling a cancelled charge is harmless."""
    usage = usage_get(usage_id)
    if usage is None or usage.kind != "order":  # late fees are not the order service's
        raise Problem(404, "charge_not_found", "No existe un cargo con ese id.")
    if usage.status != "cancelled":
        try:
            usage_cancel(usage_id=usage_id, actor=caller.actor)
        except CreditError as error:
            raise Problem(409, "charge_not_cancellable", str(error)) from None
    return ChargeSchema().dump(charge_find(usage_id))
