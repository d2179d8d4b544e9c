"""Credit forms: money is Decimal with two places, never float; every refusal is a field error."""

import uuid
from datetime import date

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from portal import clock
from portal.credit.models import PAYMENT_METHODS, REQUEST_KINDS
from portal.credit.selectors import QUEUE_SORT_LABELS
from portal.validation import (
    MoneyField,
    WholeNumberField,
    choices,
    empty_to_none,
    no_control_characters,
    no_control_characters_multiline,
    strip_field,
)

TERM_MESSAGE = "Plazo entre 1 y 365 días."


def _reason(label: str, *, required: bool = True, maximum: int = 1000, id: str | None = None):
    validators = [
        DataRequired(f"Indique {label.lower()}.") if required else Optional(),
        Length(min=3 if required else 0, max=maximum, message=f"Entre 3 y {maximum} caracteres."),
        no_control_characters_multiline,
    ]
    return TextAreaField(label, validators=validators, filters=[strip_field, empty_to_none], id=id)


def _uuid(value):
    if not value:
        return None
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        return value


def _a_form_key(form, field):
    if not isinstance(field.data, uuid.UUID):
        raise ValidationError("Formulario no válido: recargue la página.")


def _idempotency_key():
    """The hidden key a form is rendered with: the same key submitted twice acts once."""
    return HiddenField(filters=[_uuid], validators=[_a_form_key])


def _within_term(form, field):
    if field.data is not None and not 1 <= field.data <= 365:
        raise ValidationError(TERM_MESSAGE)


def _term(label: str, *, required: bool):
    return WholeNumberField(
        label,
        validators=[DataRequired(TERM_MESSAGE) if required else Optional(), _within_term],
        message=TERM_MESSAGE,
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


class QueueFilterForm(FlaskForm):
    """Sort and narrow the approval queue (a GET form; the URL keeps it)."""

    class Meta:
        csrf = False

    sort = SelectField("Ordenar por", choices=choices(QUEUE_SORT_LABELS), default="age")
    kind = SelectField("Tipo", choices=choices({"": "Todos"} | REQUEST_KINDS), default="")
    min_amount = MoneyField("Monto desde (US$)", validators=[Optional()])
    max_amount = MoneyField("Monto hasta (US$)", validators=[Optional()])
    requester = SelectField("Solicitante", choices=[], filters=[_uuid], validate_choice=False)

    def validate_requester(self, field):
        if field.data is not None and not isinstance(field.data, uuid.UUID):
            raise ValidationError("Solicitante no válido.")

    def validate_max_amount(self, field):
        if field.data and self.min_amount.data and field.data < self.min_amount.data:
            raise ValidationError("El monto máximo es menor que el mínimo.")


class BulkDecisionForm(FlaskForm):
    """Approve (at the requested values) or reject several requests, each decided on its own."""

    request_ids = SelectMultipleField(
        "Solicitudes", choices=[], validate_choice=False, coerce=_uuid
    )
    decision = SelectField(
        "Decisión", choices=choices({"approve": "Aprobar", "reject": "Rechazar"})
    )
    approval_notes = _reason("Motivo o notas", required=False)

    def validate_request_ids(self, field):
        if not field.data:
            raise ValidationError("Seleccione al menos una solicitud.")
        if not all(isinstance(value, uuid.UUID) for value in field.data):
            raise ValidationError("Selección no válida: recargue la página.")

    def validate(self, extra_validators=None):
        """A rejection needs its reason (the notes are optional for approvals)."""
        valid = super().validate(extra_validators)
        if self.decision.data == "reject" and not self.approval_notes.data:
            self.approval_notes.errors = [
                *self.approval_notes.errors,
                "Indique el motivo del rechazo.",
            ]
            return False
        return valid


class SuspendForm(FlaskForm):
    """Suspension needs a reason."""

    suspension_reason = _reason("Motivo de la suspensión")


class ReactivateForm(FlaskForm):
    """Reactivation notes."""

    # Shown beside the limit form on a suspended account: its own id (same field name).
    approval_notes = _reason("Notas de reactivación", id="reactivation_notes")


class LimitForm(FlaskForm):
    """A lower limit with the reason for it (an increase is a request)."""

    credit_limit = MoneyField(
        "Nuevo límite, menor (US$)", validators=[InputRequired("Indique el límite.")]
    )
    approval_notes = _reason("Motivo del cambio", id="limit_notes")


class CloseForm(FlaskForm):
    """Closing an account with nothing owed needs a reason."""

    closure_reason = _reason("Motivo del cierre")


class WriteOffForm(FlaskForm):
    """Asking to write off the balance needs a reason; another approver decides."""

    write_off_reason = _reason("Motivo del castigo")


class IncreaseForm(FlaskForm):
    """Ask for a higher limit; another approver decides."""

    requested_limit = MoneyField(
        "Límite solicitado (US$)",
        validators=[InputRequired("Indique el límite.")],
        id="increase-limit",
    )
    reason = _reason("Justificación")


class UsageForm(FlaskForm):
    """A charge against one of the customer's orders, named by its number (F-0012345)."""

    order_number = StringField(
        "Número de orden",
        validators=[
            DataRequired("Indique el número de orden."),
            Regexp(r"^[A-Za-z0-9][A-Za-z0-9-]{0,29}$", message="El número de orden no es válido."),
        ],
        filters=[strip_field],
    )
    amount = MoneyField(
        "Monto (US$)", validators=[InputRequired("Indique el monto.")], id="usage-amount"
    )


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
    idempotency_key = _idempotency_key()


class ReversalForm(FlaskForm):
    """Reversing a payment needs a reason."""

    reversal_reason = _reason("Motivo de la reversión")


class FeeWaiverForm(FlaskForm):
    """Waiving a late fee needs a reason."""

    waiver_reason = _reason("Motivo de la condonación")


class FeeExemptionForm(FlaskForm):
    """Exempting an account from late fees (exempt=1), or ending it (0), with a reason."""

    exempt = SelectField(choices=choices({"1": "Exonerar", "0": "Quitar exoneración"}))
    exemption_reason = _reason("Motivo (recargos por mora)")


class DateRangeForm(FlaskForm):
    """Statement period (a GET form)."""

    class Meta:
        csrf = False

    start = DateField("Desde", validators=[Optional()])
    end = DateField("Hasta", validators=[Optional()])

    def validate_end(self, field):
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError("La fecha final es anterior a la inicial.")


class StatementMailForm(DateRangeForm):
    """E-mail the statement of the period shown; the idempotency key makes a double submit
    send once."""

    class Meta:
        csrf = True

    idempotency_key = _idempotency_key()


class AgingForm(FlaskForm):
    """The day the aging report is read at the end of (a GET form; empty: today)."""

    class Meta:
        csrf = False

    as_of = DateField("Saldos al", validators=[Optional()])

    def validate_as_of(self, field):
        if field.data and field.data > clock.today():
            raise ValidationError("La fecha no puede ser posterior a hoy.")


def statement_mail_form_blank(start: date | None, end: date | None) -> StatementMailForm:
    """The statement page's "Enviar por correo" form for the period shown, with a fresh key."""
    return StatementMailForm(formdata=None, start=start, end=end, idempotency_key=uuid.uuid4())
