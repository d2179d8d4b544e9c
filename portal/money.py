"""Money as staff read it. Amounts are Decimal everywhere, never float."""

from decimal import Decimal


def money(value: Decimal | None) -> str:
    """A USD amount: US$1,234.50 (and -US$5.00); an em dash for no value."""
    if value is None:
        return "—"
    return f"{'-' if value < 0 else ''}US${abs(value):,.2f}"
