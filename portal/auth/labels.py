"""Spanish labels of the staff roles (the `label` filter reads them)."""

from portal.auth.models import ROLES

LABELS = {"role": ROLES}
