"""The organization settings form."""

from decimal import Decimal

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from portal.settings.models import LATE_FEE_MODES
from portal.validation import (
    MoneyField,
    choices,
    empty_to_none,
    no_control_characters_multiline,
)

MAX_LATE_FEE_PERCENT = Decimal("10")


class OrganizationSettingsForm(FlaskForm):
    """What an org admin may set for the whole organization."""

    max_credit_limit = MoneyField(
        "Límite de crédito máximo (US$)", validators=[InputRequired("Indique el límite máximo.")]
    )
    approval_level = MoneyField(
        "Nivel de aprobación (US$)",
        validators=[InputRequired("Indique el nivel de aprobación.")],
    )
    address = TextAreaField(
        "Dirección de la organización",
        validators=[
            Optional(),
            Length(max=500, message="Máximo 500 caracteres."),
            no_control_characters_multiline,
        ],
        filters=[empty_to_none],
    )
    late_fee_mode = SelectField("Recargo por mora", choices=choices(LATE_FEE_MODES), default="off")
    # No Optional(): it would stop the validators below, which need the chosen mode.
    late_fee_amount = MoneyField("Monto fijo por mes (US$)")
    late_fee_percent = MoneyField("Porcentaje mensual (%)")
    late_fee_grace_days = IntegerField(
        "Días de gracia",
        default=0,
        validators=[NumberRange(min=0, max=365, message="Entre 0 y 365 días de gracia.")],
    )
    late_fee_cap = MoneyField("Tope por recargo (US$, opcional)", validators=[Optional()])

    def validate_late_fee_amount(self, field):
        if self.late_fee_mode.data == "fixed" and field.data is None:
            raise ValidationError("Indique el monto fijo del recargo.")

    def validate_late_fee_percent(self, field):
        if self.late_fee_mode.data == "percent" and field.data is None:
            raise ValidationError("Indique el porcentaje mensual del recargo.")
        if field.data is not None and field.data > MAX_LATE_FEE_PERCENT:
            raise ValidationError("El porcentaje mensual no puede pasar de 10 %.")
