"""Credit forms: money is Decimal with two places, never float; every refusal is a field error."""

import re
import uuid
from decimal import Decimal

from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from portal.credit.models import MAX_AMOUNT, PAYMENT_METHODS
from portal.validation import (
    choices,
    empty_to_none,
    no_control_characters,
    no_control_characters_multiline,
    strip_field,
)

TERM_MESSAGE = "Plazo entre 1 y 365 días."
AMOUNT_TEXT = re.compile(r"-?\d{1,20}(\.\d{1,20})?")  # plain decimal notation only


class MoneyField(StringField):
    """An amount in dollars: positive, at most two decimals, at most 12 digits; a Decimal."""

    def process_formdata(self, valuelist):
        self.raw_text = (valuelist[0] if valuelist else "").strip().replace(",", "")
        self.data = None
        if not self.raw_text:
            return
        text = self.raw_text.removeprefix("US$").removeprefix("$")
        if not AMOUNT_TEXT.fullmatch(text):
            raise ValueError("Ingrese un monto en números, por ejemplo 125.50.")
        value = Decimal(text)
        if value.as_tuple().exponent < -2:
            raise ValueError("Use como máximo dos decimales.")
        if value <= 0:
            raise ValueError("El monto debe ser mayor que cero.")
        if value > MAX_AMOUNT:
            raise ValueError("El monto es demasiado grande.")
        self.data = value.quantize(Decimal("0.01"))

    def _value(self):
        return getattr(self, "raw_text", None) or (f"{self.data:.2f}" if self.data else "")


def _reason(label: str, *, required: bool = True, maximum: int = 1000):
    validators = [
        DataRequired(f"Indique {label.lower()}.") if required else Optional(),
        Length(min=3 if required else 0, max=maximum, message=f"Entre 3 y {maximum} caracteres."),
        no_control_characters_multiline,
    ]
    return TextAreaField(label, validators=validators, filters=[strip_field, empty_to_none])


def _term(label: str, *, required: bool):
    return IntegerField(
        label,
        validators=[
            DataRequired(TERM_MESSAGE) if required else Optional(),
            NumberRange(min=1, max=365, message=TERM_MESSAGE),
        ],
    )


class CreditRequestForm(FlaskForm):
    """Staff ask for a credit line for a customer."""

    requested_limit = MoneyField(
        "Límite solicitado (US$)", validators=[InputRequired("Indique el límite.")]
    )
    requested_term_days = _term("Plazo de pago (días)", required=True)
    request_notes = _reason("Justificación")


class ApproveForm(FlaskForm):
    """An approver accepts, optionally with another limit or terms."""

    credit_limit = MoneyField("Límite aprobado (US$)", validators=[Optional()])
    payment_term_days = _term("Plazo (días)", required=False)
    approval_notes = _reason("Notas", required=False)


class RejectForm(FlaskForm):
    """An approver rejects with notes."""

    approval_notes = _reason("Motivo del rechazo")


class SuspendForm(FlaskForm):
    """Suspension needs a reason."""

    suspension_reason = _reason("Motivo de la suspensión")


class ReactivateForm(FlaskForm):
    """Reactivation notes."""

    approval_notes = _reason("Notas de reactivación")


class LimitForm(FlaskForm):
    """A new limit with the reason for it."""

    credit_limit = MoneyField(
        "Nuevo límite (US$)", validators=[InputRequired("Indique el límite.")]
    )
    approval_notes = _reason("Motivo del cambio")


def _uuid(value):
    if not value:
        return None
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        return value


class UsageForm(FlaskForm):
    """A charge against an order."""

    order_id = StringField(
        "Número de orden (UUID)", validators=[DataRequired("Indique la orden.")], filters=[_uuid]
    )
    amount = MoneyField(
        "Monto (US$)", validators=[InputRequired("Indique el monto.")], id="usage-amount"
    )

    def validate_order_id(self, field):
        if not isinstance(field.data, uuid.UUID):
            raise ValidationError("El número de orden no es válido.")


class PaymentForm(FlaskForm):
    """A payment; the idempotency key makes a double submit post once."""

    amount = MoneyField(
        "Monto (US$)", validators=[InputRequired("Indique el monto.")], id="payment-amount"
    )
    payment_method = SelectField("Método", choices=choices(PAYMENT_METHODS))
    payment_reference = StringField(
        "Referencia",
        validators=[
            Optional(),
            Length(max=255, message="Máximo 255 caracteres."),
            no_control_characters,
        ],
        filters=[empty_to_none],
    )
    payment_date = DateField("Fecha de pago", validators=[InputRequired("Indique la fecha.")])
    idempotency_key = HiddenField(filters=[_uuid])

    def validate_idempotency_key(self, field):
        if not isinstance(field.data, uuid.UUID):
            raise ValidationError("Formulario no válido: recargue la página.")


class ReversalForm(FlaskForm):
    """Reversing a payment needs a reason."""

    reversal_reason = _reason("Motivo de la reversión")


class DateRangeForm(FlaskForm):
    """Statement period (a GET form)."""

    class Meta:
        csrf = False

    start = DateField("Desde", validators=[Optional()])
    end = DateField("Hasta", validators=[Optional()])

    def validate_end(self, field):
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError("La fecha final es anterior a la inicial.")
