"""The organization settings form."""

from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from portal.validation import MoneyField, empty_to_none, no_control_characters_multiline


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
