"""Login and password change forms."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

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


class PasswordChangeForm(FlaskForm):
    """The current password, and the new one typed twice."""

    current_password = PasswordField(
        "Contraseña actual",
        validators=[
            DataRequired("Ingrese su contraseña actual."),
            Length(max=128, message="Contraseña demasiado larga."),
        ],
    )
    password = PasswordField(
        "Nueva contraseña",
        validators=[DataRequired("Ingrese la nueva contraseña.")],
        description="Al menos 12 caracteres; una frase de varias palabras es fácil de recordar.",
    )
    password_confirm = PasswordField(
        "Repita la nueva contraseña",
        validators=[
            DataRequired("Repita la nueva contraseña."),
            EqualTo("password", message="Las contraseñas no coinciden."),
        ],
    )
