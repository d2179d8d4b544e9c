"""Spanish labels of the e-mail codes staff see."""

from portal.mail.models import STATES

LABELS = {"email_state": STATES}
