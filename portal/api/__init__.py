"""The checkout API under /api/v1 (bearer keys, JSON, RFC 9457 problems) and its keys' pages."""

from flask import Blueprint

from portal.api.labels import LABELS
from portal.formatting import labels_register

bp = Blueprint("api", __name__)
# Staff pages (session, CSRF) that manage the keys; the settings page links to them.
keys_bp = Blueprint("api_keys", __name__)
labels_register(bp, LABELS)

from portal.api import keys_views, views  # noqa: E402,F401

# The settings page shows the keys section (api/_keys.html) with what these return.
keys_bp.add_app_template_global(keys_views.keys_section, "api_keys_section")
