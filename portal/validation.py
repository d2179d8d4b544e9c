"""Input normalisation and validators shared by every form."""

import unicodedata

from email_validator import EmailNotValidError, validate_email
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError


def normalize_email_field(value: str | None) -> str | None:
    """Trim and lowercase an email as typed."""
    return value.strip().lower() if isinstance(value, str) else value


def strip_field(value: str | None) -> str | None:
    """Trim surrounding whitespace."""
    return value.strip() if isinstance(value, str) else value


def valid_email(form, field) -> None:
    """WTForms validator: a syntactically valid address (no DNS lookup); stores the normal form."""
    if not field.data:
        return
    try:
        field.data = validate_email(field.data, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValidationError("Ingrese un correo electrónico válido.") from None


def no_control_characters(form, field) -> None:
    """WTForms validator: refuse control characters (other than none at all) in single-line text."""
    if isinstance(field.data, str) and any(
        unicodedata.category(character) in {"Cc", "Cf", "Cs", "Co"} for character in field.data
    ):
        raise ValidationError("El texto contiene caracteres no permitidos.")


def choices(labels: dict[str, str]) -> list[SelectChoice]:
    """Select options from a {stored code: Spanish label} mapping."""
    return [SelectChoice(value, label) for value, label in labels.items()]
