"""Collections forms: the worklist filters (GET), assignment, and a contact with its promise."""

import uuid

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from portal.collections.models import CHANNELS, OUTCOMES
from portal.collections.selectors import OVERDUE_BUCKETS, UNASSIGNED
from portal.validation import (
    MoneyField,
    choices,
    empty_to_none,
    no_control_characters,
    no_control_characters_multiline,
    strip_field,
)

ME = "me"


def _uuid_or_code(*codes: str):
    def coerce(value):
        if not value or value in codes:
            return value or None
        try:
            return uuid.UUID(str(value).strip())
        except ValueError:
            return value

    return coerce


class WorklistFilterForm(FlaskForm):
    """Narrow the worklist (a GET form; the URL keeps it). Collector choices are set per request."""

    class Meta:
        csrf = False

    bucket = SelectField(
        "Antigüedad", choices=choices({"": "Todas"} | dict(OVERDUE_BUCKETS)), default=""
    )
    collector = SelectField(
        "Cobrador", choices=[], coerce=_uuid_or_code(UNASSIGNED), validate_choice=False
    )
    quiet = BooleanField("Sin contacto en 7 días")
    broken = BooleanField("Promesa incumplida")

    def validate_collector(self, field):
        if field.data is not None and not isinstance(field.data, uuid.UUID | str):
            raise ValidationError("Cobrador no válido.")
        if isinstance(field.data, str) and field.data != UNASSIGNED:
            raise ValidationError("Cobrador no válido.")


class AssignForm(FlaskForm):
    """Assign one or more accounts to me or to a colleague."""

    account_ids = SelectMultipleField(
        "Cuentas", choices=[], validate_choice=False, coerce=_uuid_or_code()
    )
    assignee = SelectField("Asignar a", choices=[], coerce=_uuid_or_code(ME), validate_choice=False)

    def validate_account_ids(self, field):
        if not field.data:
            raise ValidationError("Seleccione al menos una cuenta.")
        if not all(isinstance(value, uuid.UUID) for value in field.data):
            raise ValidationError("Selección no válida: recargue la página.")

    def validate_assignee(self, field):
        if field.data != ME and not isinstance(field.data, uuid.UUID):
            raise ValidationError("Indique a quién asignar.")


class ContactForm(FlaskForm):
    """A contact with the customer; the amount and date only with outcome "Promesa de pago"."""

    channel = SelectField("Canal", choices=choices(CHANNELS))
    outcome = SelectField("Resultado", choices=choices(OUTCOMES))
    note = TextAreaField(
        "Nota",
        validators=[
            Optional(),
            Length(max=2000, message="Máximo 2000 caracteres."),
            no_control_characters_multiline,
        ],
        filters=[strip_field, empty_to_none],
    )
    next_action_on = DateField("Próxima acción", validators=[Optional()])
    promise_amount = MoneyField("Monto prometido (US$)", validators=[Optional()])
    promise_due_on = DateField("Fecha prometida", validators=[Optional()])

    def validate_promise_amount(self, field):
        if self.outcome.data == "promise" and field.data is None and not field.errors:
            raise ValidationError("Indique el monto prometido.")

    def validate_promise_due_on(self, field):
        if self.outcome.data == "promise" and field.data is None and not field.errors:
            raise ValidationError("Indique la fecha prometida.")


def contact_form_blank() -> ContactForm:
    """An empty contact form (the account and customer pages render the log with it)."""
    return ContactForm(formdata=None)


class DunningLevelForm(FlaskForm):
    """A dunning level: when it is sent and what it says ({cliente}, {monto_vencido}, …)."""

    level_id = HiddenField(filters=[strip_field, empty_to_none])
    days_overdue = IntegerField(
        "Días de atraso",
        validators=[
            InputRequired("Indique a los cuántos días de atraso se envía."),
            NumberRange(min=1, max=365, message="Entre 1 y 365 días."),
        ],
    )
    name = StringField(
        "Nombre",
        validators=[
            DataRequired("Indique el nombre del nivel."),
            Length(max=80, message="Máximo 80 caracteres."),
            no_control_characters,
        ],
        filters=[strip_field],
    )
    subject = StringField(
        "Asunto del correo",
        validators=[
            DataRequired("Indique el asunto."),
            Length(max=200, message="Máximo 200 caracteres."),
            no_control_characters,
        ],
        filters=[strip_field],
    )
    body = TextAreaField(
        "Texto del correo y de la carta",
        validators=[
            DataRequired("Indique el texto."),
            Length(max=5000, message="Máximo 5000 caracteres."),
            no_control_characters_multiline,
        ],
        filters=[strip_field],
    )
    attach_statement = BooleanField("Adjuntar estado de cuenta al correo")

    def validate_level_id(self, field):
        if field.data is None:
            return
        try:
            field.data = uuid.UUID(field.data)
        except ValueError as error:
            raise ValidationError("Nivel no válido: recargue la página.") from error
