"""Collections: the overdue worklist, collectors' assignments, the contact log, promises to pay."""

from flask import Blueprint

from portal.collections.forms import contact_form_blank
from portal.collections.labels import LABELS
from portal.collections.selectors import account_contacts
from portal.formatting import labels_register

bp = Blueprint("collections", __name__)
labels_register(bp, LABELS)
# The account and customer pages render the contact log (collections/_contacts.html) with this.
bp.add_app_template_global(account_contacts, "account_contacts")
bp.add_app_template_global(contact_form_blank, "contact_form_blank")

from portal.collections import views  # noqa: E402,F401
