"""The business clock: dates are Panama's (America/Panama), whatever the server's zone."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

BUSINESS_ZONE = ZoneInfo("America/Panama")
_pinned_today: ContextVar[date | None] = ContextVar("pinned_today", default=None)


def today() -> date:
    """Today's date in Panama (or the day pinned by `pinned`)."""
    return _pinned_today.get() or datetime.now(BUSINESS_ZONE).date()


def day_start(day: date) -> datetime:
    """The first instant of `day` in Panama."""
    return datetime.combine(day, time.min, tzinfo=BUSINESS_ZONE)


@contextmanager
def pinned(day: date) -> Iterator[None]:
    """Run a block as if today were `day`: the demo seed replays months of history this way."""
    token = _pinned_today.set(day)
    try:
        yield
    finally:
        _pinned_today.reset(token)
