"""The form org admins create API keys with."""

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from portal.api.models import SCOPES
from portal.validation import CheckboxListField, choices, no_control_characters, strip_field


class ApiKeyForm(FlaskForm):
    """A new API key: a name people recognise and what it may do."""

    name = StringField(
        "Nombre de la clave",
        validators=[
            DataRequired("Indique un nombre, p. ej. «Servicio de órdenes»."),
            Length(max=100, message="Máximo 100 caracteres."),
            no_control_characters,
        ],
        filters=[strip_field],
    )
    scopes = CheckboxListField(
        "Permisos",
        choices=choices(SCOPES),
        validators=[DataRequired("Elija al menos un permiso.")],
    )
