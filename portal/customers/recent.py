"""The customers a staff member opened last: a short list per user in Redis, newest first.

The key names the organization and the user, so a list is never read across organizations; the
customers are loaded under the request's RLS scope as well, so a stale or foreign id shows nothing.
"""

import uuid

import sqlalchemy as sa

from portal.customers.models import Customer
from portal.extensions import db
from portal.tasks import redis_connection

RECENT_KEY = "portal:recent-customers:{}:{}"  # organization id, staff user id
RECENT_LIMIT = 8
RECENT_SECONDS = 30 * 24 * 3600  # a list nobody used for a month is dropped


def _key(user) -> str:
    return RECENT_KEY.format(user.organization_id, user.staff_user_id)


def recent_customer_add(*, user, customer_id: uuid.UUID) -> None:
    """Put the customer first in the user's list (once), capped, in one round trip."""
    key, member = _key(user), str(customer_id)
    pipeline = redis_connection().pipeline(transaction=True)
    pipeline.lrem(key, 0, member)
    pipeline.lpush(key, member)
    pipeline.ltrim(key, 0, RECENT_LIMIT - 1)
    pipeline.expire(key, RECENT_SECONDS)
    pipeline.execute()


def recent_customers(*, user, limit: int = RECENT_LIMIT) -> list[Customer]:
    """The recent customers still visible to the user, newest first (one Redis read, one query)."""
    ids = []
    for raw in redis_connection().lrange(_key(user), 0, limit - 1):
        try:
            ids.append(uuid.UUID(raw.decode()))
        except ValueError:
            continue
    if not ids:
        return []
    found = {
        customer.customer_id: customer
        for customer in db.session.scalars(sa.select(Customer).where(Customer.customer_id.in_(ids)))
    }
    return [found[customer_id] for customer_id in ids if customer_id in found]
