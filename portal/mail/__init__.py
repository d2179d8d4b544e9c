"""E-mail: the outbox written with the decision to send, its delivery over SMTP by the worker
(at most once per outbox row), and in development a local SMTP sink shown at /dev/mail."""

from flask import Blueprint

from portal.formatting import labels_register
from portal.mail.labels import LABELS

bp = Blueprint("mail", __name__)
labels_register(bp, LABELS)

from portal.mail import views  # noqa: E402,F401
