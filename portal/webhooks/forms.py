"""The form org admins register a webhook URL with."""

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import URLField
from wtforms.validators import DataRequired, Length, ValidationError

from portal.validation import CheckboxListField, choices, no_control_characters, strip_field
from portal.webhooks.jobs import target_refusal
from portal.webhooks.labels import EVENT_TYPES


class SubscriptionForm(FlaskForm):
    """A receiver URL and the events it wants."""

    url = URLField(
        "URL del receptor",
        validators=[
            DataRequired("Indique la URL."),
            Length(max=2000, message="Máximo 2000 caracteres."),
            no_control_characters,
        ],
        filters=[strip_field],
    )
    event_types = CheckboxListField(
        "Eventos",
        choices=choices(EVENT_TYPES),
        validators=[DataRequired("Elija al menos un evento.")],
    )

    def validate_url(self, field):
        refusal = target_refusal(
            field.data, allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE"]
        )
        if refusal or any(character.isspace() for character in field.data):
            raise ValidationError(f"URL no aceptada: {refusal or 'contiene espacios'}.")
