"""Spanish labels of the credit codes staff see (the `label` filter reads them)."""

from portal.credit.models import (
    ACCOUNT_STATUSES,
    PAYMENT_METHODS,
    REQUEST_KINDS,
    REQUEST_STATES,
    USAGE_STATUSES,
)

LABELS = {
    "credit_status": ACCOUNT_STATUSES,
    "credit_request_kind": REQUEST_KINDS,
    "credit_request_state": REQUEST_STATES,
    "usage_status": USAGE_STATUSES,
    "payment_method": PAYMENT_METHODS,
}
