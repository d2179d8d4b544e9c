"""The business clock: dates are Panama's (America/Panama), whatever the server's zone."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

BUSINESS_ZONE = ZoneInfo("America/Panama")


def today() -> date:
    """Today's date in Panama."""
    return datetime.now(BUSINESS_ZONE).date()
