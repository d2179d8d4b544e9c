"""The demo organizations' history (purchases, events, credit), built through the services."""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from portal.extensions import db


def _no_flush_wait(session, transaction, connection) -> None:
    connection.exec_driver_sql("SET LOCAL synchronous_commit = off")


@contextmanager
def quick_commits() -> Iterator[None]:
    """Seed only: commits do not wait for the WAL flush to disk (the services commit per step).

    A crash may lose the last moments of the seed, never consistency; the seed is re-runnable.
    """
    sa.event.listen(db.session, "after_begin", _no_flush_wait)
    try:
        yield
    finally:
        sa.event.remove(db.session, "after_begin", _no_flush_wait)
