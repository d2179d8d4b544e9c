"""The organization settings form."""

from flask_wtf import FlaskForm
from wtforms.validators import InputRequired

from portal.validation import MoneyField


class OrganizationSettingsForm(FlaskForm):
    """What an org admin may set for the whole organization."""

    max_credit_limit = MoneyField(
        "Límite de crédito máximo (US$)", validators=[InputRequired("Indique el límite máximo.")]
    )
    approval_level = MoneyField(
        "Nivel de aprobación (US$)",
        validators=[InputRequired("Indique el nivel de aprobación.")],
    )
