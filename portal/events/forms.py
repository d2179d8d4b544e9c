"""The inbox's filters (a GET form: no CSRF)."""

from flask_wtf import FlaskForm
from wtforms import DateField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional, ValidationError

from portal.events.models import EVENT_TYPES, INBOX_STATUSES
from portal.events.selectors import InboxFilters
from portal.validation import choices, empty_to_none


def _any_of(label: str, labels: dict[str, str]) -> SelectField:
    return SelectField(
        label,
        choices=[SelectChoice("", "Todos"), *choices(labels)],
        filters=[empty_to_none],
        validators=[Optional()],
    )


class InboxFilterForm(FlaskForm):
    """Type, state and the days the events occurred."""

    class Meta:
        csrf = False

    event_type = _any_of("Tipo", EVENT_TYPES)
    status = _any_of("Estado", INBOX_STATUSES)
    occurred_from = DateField("Ocurrió desde", validators=[Optional()], format="%Y-%m-%d")
    occurred_to = DateField("Ocurrió hasta", validators=[Optional()], format="%Y-%m-%d")

    def validate_occurred_to(self, field):
        if field.data and self.occurred_from.data and field.data < self.occurred_from.data:
            raise ValidationError("La fecha final es anterior a la inicial.")

    def filters(self) -> InboxFilters:
        """The validated filters."""
        return InboxFilters(
            event_type=self.event_type.data,
            status=self.status.data,
            occurred_from=self.occurred_from.data,
            occurred_to=self.occurred_to.data,
        )
