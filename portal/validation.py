"""Input normalisation and validators shared by every form."""

import re
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from wtforms import SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from portal.money import money_parse

# ASCII digits only (int() takes Arabic-Indic or full-width digits), "," between thousands.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,9}", re.ASCII)


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


def _forbidden_characters(text: str, allowed: str) -> bool:
    return any(
        unicodedata.category(character) in {"Cc", "Cs", "Co"} and character not in allowed
        for character in text
    )


def no_control_characters(form, field) -> None:
    """WTForms validator: refuse control characters in single-line text."""
    if isinstance(field.data, str) and _forbidden_characters(field.data, ""):
        raise ValidationError("El texto contiene caracteres no permitidos.")


def no_control_characters_multiline(form, field) -> None:
    """WTForms validator: like no_control_characters, but line breaks and tabs are fine."""
    if isinstance(field.data, str) and _forbidden_characters(field.data, "\n\r\t"):
        raise ValidationError("El texto contiene caracteres no permitidos.")


def choices(labels: dict[str, str]) -> list[SelectChoice]:
    """Select options from a {stored code: Spanish label} mapping."""
    return [SelectChoice(value, label) for value, label in labels.items()]


def normalize_phone(value: str, region: str = "PA") -> str:
    """E.164 form of a phone typed in any format (default region Panama); ValueError if invalid."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError(value) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(value)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def valid_phone(form, field) -> None:
    """WTForms validator: a real phone number; stores it in E.164."""
    if not field.data:
        field.data = None
        return
    try:
        field.data = normalize_phone(field.data)
    except ValueError:
        raise ValidationError(
            "Ingrese un teléfono válido (por ejemplo 6123-4567 o +507 6123 4567)."
        ) from None


def empty_to_none(value):
    """Blank optional inputs are stored as NULL, not as empty strings."""
    if isinstance(value, str):
        value = value.strip()
    return value or None


def form_error(form, message: str, field: str | None = None) -> None:
    """Show a service's refusal on the form: on the field it concerns, or above the form."""
    target = getattr(form, field, None) if field else None
    if target is not None:
        target.errors = [*target.errors, message]
    else:
        form.form_errors.append(message)


class MoneyField(StringField):
    """An amount in dollars: positive, at most two decimals, ASCII digits; a Decimal."""

    def process_formdata(self, valuelist):
        self.raw_text = (valuelist[0] if valuelist else "").strip()
        self.data = None
        self.data = money_parse(self.raw_text)

    def _value(self):
        return getattr(self, "raw_text", None) or (f"{self.data:.2f}" if self.data else "")


class WholeNumberField(StringField):
    """A whole number typed with ASCII digits (and "," for thousands); `message` if it is not."""

    def __init__(self, label=None, validators=None, *, message: str, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.message = message

    def process_formdata(self, valuelist):
        self.raw_text = (valuelist[0] if valuelist else "").strip()
        self.data = None
        if not self.raw_text:
            return
        if not _WHOLE_NUMBER.fullmatch(self.raw_text):
            raise ValueError(self.message)
        self.data = int(self.raw_text.replace(",", ""))

    def _value(self):
        return getattr(self, "raw_text", None) or ("" if self.data is None else str(self.data))


def errors_text(form) -> str:
    """All of a form's errors in one line, for a refusal shown outside the form."""
    return " ".join(error for errors in form.errors.values() for error in errors)


class CheckboxListField(SelectMultipleField):
    """Several choices as a list of checkboxes (roles, scopes)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()
