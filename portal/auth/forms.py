"""Login form."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from portal.validation import normalize_email_field


class LoginForm(FlaskForm):
    """Email and password; the email is trimmed and lowercased."""

    email = EmailField(
        "Correo electrónico",
        validators=[
            DataRequired("Ingrese su correo."),
            Length(max=255, message="Correo demasiado largo."),
        ],
        filters=[normalize_email_field],
    )
    password = PasswordField(
        "Contraseña",
        validators=[
            DataRequired("Ingrese su contraseña."),
            Length(max=128, message="Contraseña demasiado larga."),
        ],
    )
