"""Forms for staff user management."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from portal.auth.models import ROLES
from portal.validation import (
    CheckboxListField,
    choices,
    no_control_characters,
    normalize_email_field,
    strip_field,
    valid_email,
)


class StaffUserEditForm(FlaskForm):
    """Name and roles of an existing user."""

    full_name = StringField(
        "Nombre completo",
        validators=[
            DataRequired("Ingrese el nombre."),
            Length(max=200, message="Máximo 200 caracteres."),
            no_control_characters,
        ],
        filters=[strip_field],
    )
    roles = CheckboxListField(
        "Roles",
        choices=choices(ROLES),
        validators=[DataRequired("Elija al menos un rol.")],
    )


class StaffUserCreateForm(StaffUserEditForm):
    """A new user: email and initial password as well."""

    email = EmailField(
        "Correo electrónico",
        validators=[
            DataRequired("Ingrese el correo."),
            Length(max=255, message="Máximo 255 caracteres."),
            valid_email,
        ],
        filters=[normalize_email_field],
    )
    password = PasswordField(
        "Contraseña inicial",
        validators=[
            DataRequired("Ingrese una contraseña."),
            Length(min=12, max=128, message="Entre 12 y 128 caracteres."),
        ],
    )
