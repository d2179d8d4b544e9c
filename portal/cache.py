"""Short-lived Redis copies of rows, dropped whenever a transaction that changed the row commits.

A copy is dropped at once (so one reloaded before the commit cannot live long) and again after
the commit (so one reloaded from the old row while the transaction ran is gone too); a
rollback forgets the keys. The copies' own time to live bounds what a race could leave behind.
"""

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.tasks import redis_connection

_STALE = "stale_cache_keys"  # session.info key: Redis keys this transaction made stale


def cache_drop_on_commit(session: Session, keys) -> None:
    """Drop the Redis keys now and once more when the session's transaction commits."""
    keys = set(keys)
    if keys:
        session.info.setdefault(_STALE, set()).update(keys)
        _drop(keys)


@event.listens_for(Session, "after_commit")
def _drop_stale(session):
    _drop(session.info.pop(_STALE, set()))


@event.listens_for(Session, "after_rollback")
def _forget_stale(session):
    session.info.pop(_STALE, None)


def _drop(keys) -> None:
    if keys and has_app_context() and current_app.config.get("REDIS_URL"):
        redis_connection().delete(*keys)
