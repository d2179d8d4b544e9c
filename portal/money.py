"""Money as staff read it and type it. Amounts are Decimal everywhere, never float."""

import re
from decimal import Decimal

MAX_AMOUNT = Decimal("9999999999.99")  # the largest NUMERIC(12, 2)
# ASCII digits only ("\d" takes Arabic-Indic or full-width digits too), Panama's "," for
# thousands and "." for decimals.
_AMOUNT = re.compile(r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,20})(?:\.[0-9]{1,20})?", re.ASCII)


def money(value: Decimal | None) -> str:
    """A USD amount: US$1,234.50 (and -US$5.00); an em dash for no value."""
    if value is None:
        return "—"
    return f"{'-' if value < 0 else ''}US${abs(value):,.2f}"


def money_parse(text: str) -> Decimal | None:
    """A positive amount typed as 1,234.50 or US$1234.5 (None when blank); Spanish ValueError."""
    text = text.strip().removeprefix("US$").removeprefix("$").strip()
    if not text:
        return None
    if not _AMOUNT.fullmatch(text):
        raise ValueError("Ingrese un monto en números, por ejemplo 125.50.")
    value = Decimal(text.replace(",", ""))
    if value.as_tuple().exponent < -2:
        raise ValueError("Use como máximo dos decimales.")
    if value <= 0:
        raise ValueError("El monto debe ser mayor que cero.")
    if value > MAX_AMOUNT:
        raise ValueError("El monto es demasiado grande.")
    return value.quantize(Decimal("0.01"))


def amount_in_words(value: Decimal) -> str:
    """A USD amount in Spanish words, as receipts state it: «ciento veinte dólares con cincuenta
    centavos» (num2words; «un millón de dólares», as Spanish says it)."""
    from num2words import num2words

    words = num2words(value, lang="es", to="currency", currency="USD")
    return re.sub(r"\b(millón|millones) (dólar)", r"\1 de \2", words)
