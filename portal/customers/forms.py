"""Customer, status, address and search forms: validation and normalisation for friendly errors."""

import re
import unicodedata
from datetime import date

from babel import Locale
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from portal.customers.models import (
    ADDRESS_TYPES,
    CUSTOMER_STATUSES,
    CUSTOMER_TYPES,
    DOCUMENT_TYPES,
    GENDERS,
    LANGUAGES,
    LOYALTY_TIERS,
    TIMELINE_KINDS,
)
from portal.segments.models import SEGMENTS
from portal.validation import (
    choices,
    empty_to_none,
    no_control_characters,
    no_control_characters_multiline,
    normalize_email_field,
    strip_field,
    valid_email,
    valid_phone,
)

# Panamanian cédula: province 1-13, or E (foreigner), N (naturalised), PE (born abroad),
# optional AV/PI for the old registers, then book and entry: e.g. 8-123-4567, E-8-12345.
CEDULA = re.compile(r"^(?:(?:[1-9]|1[0-3])(?:AV|PI)?|E|N|PE)-\d{1,4}-\d{1,6}$")
# RUC: a cédula-like number for people, or register-book-entry for companies (155600-1-2024),
# optionally followed by its two check digits (the DGI's "DV"): 155600-1-2024 DV 45.
RUC = re.compile(
    r"^(?P<ruc>(?:[0-9A-Z]{1,10}-){2,3}(?:(?!D\.?V)[0-9A-Z]){1,10})"
    r"(?:D\.?V\.?(?P<dv>[0-9]{1,2}))?$"
)
# A legal person's RUC (register-book-entry, all digits) whose check digits can be verified: the
# registers below 50,000 (older registers) map their digits through a DGI cross-reference table
# this portal does not hold, and people's RUCs encode their cédula with letter codes; those are
# checked for their format only.
LEGAL_RUC = re.compile(r"^(?P<register>[0-9]{3,10})-(?P<book>[0-9]{1,4})-(?P<entry>[0-9]{1,6})$")
OLDEST_VERIFIABLE_REGISTER = 50_000
PASSPORT = re.compile(r"^[A-Z0-9]{5,20}$")
DOCUMENT_RULES = {
    "cedula": (CEDULA, "Cédula con formato provincia-tomo-asiento, por ejemplo 8-123-4567."),
    "ruc": (RUC, "RUC con formato 155600-1-2024 u 8-123-4567."),
    "passport": (PASSPORT, "Pasaporte de 5 a 20 letras o números, sin espacios."),
}
MAX_TAGS = 20
PERSON_ONLY = ("birth_date", "gender")  # a company has neither
NOT_COUNTRIES = {"EU", "EZ", "QO", "UN", "XA", "XB", "ZZ"}
COUNTRIES = sorted(
    (
        (code, name)
        for code, name in Locale.parse("es").territories.items()
        if re.fullmatch("[A-Z]{2}", code) and code not in NOT_COUNTRIES
    ),
    key=lambda item: unicodedata.normalize("NFKD", item[1]),
)


def _modulo_11(digits: str) -> str:
    """One DGI check digit: weights 2, 3, 4… from the right, 11 minus the remainder (0 or 1: 0)."""
    remainder = sum(int(digit) * weight for weight, digit in enumerate(reversed(digits), 2)) % 11
    return str(11 - remainder) if remainder > 1 else "0"


def ruc_check_digits(ruc: str) -> str | None:
    """The two check digits (DV) of a legal person's RUC, or None when it cannot be verified.

    The register, book and entry are padded to 10, 4 and 6 digits; the first digit is computed
    over those 20 digits, the second over the 20 digits followed by the first.
    """
    match = LEGAL_RUC.fullmatch(ruc)
    if match is None or int(match["register"]) < OLDEST_VERIFIABLE_REGISTER:
        return None
    digits = match["register"].zfill(10) + match["book"].zfill(4) + match["entry"].zfill(6)
    first = _modulo_11(digits)
    return first + _modulo_11(digits + first)


def _single_line(label: str, max_length: int, *, required: bool = False):
    validators = [Length(max=max_length, message=f"Máximo {max_length} caracteres.")]
    validators.insert(0, DataRequired(f"Ingrese {label.lower()}.") if required else Optional())
    return StringField(
        label,
        validators=[*validators, no_control_characters],
        filters=[strip_field] if required else [empty_to_none],
    )


def _optional_choice(label: str, labels: dict[str, str]) -> SelectField:
    return SelectField(
        label,
        choices=[SelectChoice("", "—"), *choices(labels)],
        filters=[empty_to_none],
        validate_choice=False,
        validators=[Optional(), _in(labels)],
    )


def _in(labels: dict[str, str]):
    def check(form, field):
        if field.data is not None and field.data not in labels:
            raise ValidationError("Elija una opción de la lista.")

    return check


def _tags(value):
    if not isinstance(value, str):
        return value
    tags = []
    for tag in (part.strip() for part in value.split(",")):
        if tag and tag not in tags:
            tags.append(tag)
    return tags or None


class CustomerForm(FlaskForm):
    """Every editable customer field; loyalty tier comes from Pricing and is not editable."""

    customer_type = SelectField("Tipo de cliente", choices=choices(CUSTOMER_TYPES), default="b2c")
    company_name = _single_line("Razón social", 255)
    first_name = _single_line("Nombre", 100, required=True)
    last_name = _single_line("Apellido", 100, required=True)
    email = EmailField(
        "Correo electrónico",
        validators=[Optional(), Length(max=255, message="Máximo 255 caracteres."), valid_email],
        filters=[normalize_email_field, empty_to_none],
    )
    phone = StringField(
        "Teléfono",
        validators=[Optional(), Length(max=30, message="Máximo 30 caracteres."), valid_phone],
        filters=[empty_to_none],
    )
    document_type = _optional_choice("Tipo de documento", DOCUMENT_TYPES)
    document_number = StringField(
        "Número de documento",
        validators=[
            Optional(),
            Length(max=50, message="Máximo 50 caracteres."),
            no_control_characters,
        ],
        filters=[lambda value: re.sub(r"\s+", "", value).upper() if value else None],
    )
    birth_date = DateField("Fecha de nacimiento", validators=[Optional()], format="%Y-%m-%d")
    gender = _optional_choice("Género", GENDERS)
    preferred_language = SelectField("Idioma preferido", choices=choices(LANGUAGES), default="es")
    marketing_consent = BooleanField("Acepta comunicaciones de mercadeo")
    tags = StringField(
        "Etiquetas (separadas por comas)",
        validators=[Optional(), Length(max=2000), no_control_characters],
        filters=[_tags],
    )
    notes = TextAreaField(
        "Notas",
        validators=[
            Optional(),
            Length(max=2000, message="Máximo 2000 caracteres."),
            no_control_characters_multiline,
        ],
        filters=[empty_to_none],
    )
    version_id = HiddenField()

    def validate(self, extra_validators=None) -> bool:
        """Field rules, a company's legal name (and no birth date or gender), then the
        document's type/number pair (Optional() skips the number when empty)."""
        super().validate(extra_validators)
        if self.customer_type.data == "b2b":
            for name in PERSON_ONLY:  # not asked of a company: ignored if sent
                self[name].data, self[name].errors = None, []
            if not self.company_name.data:
                self.company_name.errors.append("Ingrese la razón social de la empresa.")
        else:
            self.company_name.data = None
        valid = not any(field.errors for field in self)
        kind, number = self.document_type.data, self.document_number.data
        if valid and bool(kind) != bool(number):
            self.document_number.errors.append(
                "Indique el tipo y el número de documento, o ninguno."
            )
            return False
        return valid

    def validate_document_number(self, field):
        kind, number = self.document_type.data, field.data
        if kind in DOCUMENT_RULES:
            pattern, message = DOCUMENT_RULES[kind]
            match = pattern.fullmatch(number)
            if not match:
                raise ValidationError(message)
            if kind == "ruc" and match["dv"]:
                expected = ruc_check_digits(match["ruc"])
                if expected is not None and match["dv"].zfill(2) != expected:
                    raise ValidationError(
                        "El dígito verificador (DV) no corresponde a este RUC: revíselo."
                    )

    def validate_birth_date(self, field):
        if field.data and field.data > date.today():
            raise ValidationError("La fecha de nacimiento no puede estar en el futuro.")
        if field.data and field.data < date(1900, 1, 1):
            raise ValidationError("La fecha de nacimiento debe ser posterior a 1900.")

    def validate_tags(self, field):
        if field.data and (len(field.data) > MAX_TAGS or any(len(tag) > 50 for tag in field.data)):
            raise ValidationError(f"Hasta {MAX_TAGS} etiquetas de 50 caracteres como máximo.")

    def validate_version_id(self, field):
        if field.data and not str(field.data).isdigit():
            raise ValidationError("Versión no válida.")

    def customer_data(self) -> dict:
        """The normalised values, keyed by column."""
        return {
            name: field.data
            for name, field in self._fields.items()
            if name not in {"csrf_token", "version_id"}
        }


class StatusForm(FlaskForm):
    """A status change always carries a reason."""

    status = SelectField("Nuevo estado", choices=choices(CUSTOMER_STATUSES))
    status_reason = TextAreaField(
        "Motivo",
        validators=[
            DataRequired("Indique el motivo del cambio."),
            Length(min=3, max=500, message="Entre 3 y 500 caracteres."),
            no_control_characters_multiline,
        ],
        filters=[strip_field],
    )
    version_id = HiddenField()


class NoteForm(FlaskForm):
    """A staff note on the customer's timeline."""

    body = TextAreaField(
        "Nota",
        validators=[
            DataRequired("Escriba la nota."),
            Length(max=2000, message="Máximo 2000 caracteres."),
            no_control_characters_multiline,
        ],
        filters=[strip_field],
        id="note_body",
    )


class TimelineForm(FlaskForm):
    """The timeline's kind filter and page (a GET form: no CSRF)."""

    class Meta:
        csrf = False

    kind = SelectField(
        "Mostrar",
        choices=[SelectChoice("", "Toda la actividad"), *choices(TIMELINE_KINDS)],
        filters=[empty_to_none],
        validate_choice=False,
        validators=[Optional(), _in(TIMELINE_KINDS)],
    )
    after = StringField(filters=[empty_to_none])


class AddressForm(FlaskForm):
    """A shipping and/or billing address."""

    address_type = SelectField("Tipo", choices=choices(ADDRESS_TYPES), default="shipping")
    recipient_name = _single_line("Destinatario", 255)
    address_line1 = _single_line("Dirección", 255, required=True)
    address_line2 = _single_line("Dirección (línea 2)", 255)
    city = _single_line("Ciudad", 100, required=True)
    state = _single_line("Provincia", 100)
    postal_code = _single_line("Código postal", 20)
    country = SelectField("País", choices=choices(dict(COUNTRIES)), default="PA")
    phone = StringField(
        "Teléfono",
        validators=[Optional(), Length(max=30, message="Máximo 30 caracteres."), valid_phone],
        filters=[empty_to_none],
    )
    is_default = BooleanField("Dirección predeterminada")

    def address_data(self) -> dict:
        """The normalised values, keyed by column."""
        return {name: field.data for name, field in self._fields.items() if name != "csrf_token"}


class SearchForm(FlaskForm):
    """The search box and its filters (a GET form: no CSRF)."""

    class Meta:
        csrf = False

    q = StringField("Buscar", filters=[lambda value: (value or "").strip()[:200]])
    status = _optional_choice("Estado", CUSTOMER_STATUSES)
    customer_type = _optional_choice("Tipo", CUSTOMER_TYPES)
    loyalty_tier = _optional_choice("Nivel", LOYALTY_TIERS)
    segment = _optional_choice("Segmento", SEGMENTS)
    after = StringField(filters=[empty_to_none])
    # How many pages "Cargar más" has shown: in the address bar, so Back and reload show them all.
    pages = IntegerField(validators=[Optional(), NumberRange(min=1)])

    def validate_after(self, field):
        if field.data and not re.fullmatch(r"[0-9A-Za-z.:+-]{1,40}_[0-9a-f-]{36}", field.data):
            raise ValidationError("Página no válida.")
