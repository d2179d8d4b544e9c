"""Spanish labels of the customer codes staff see (the `label` filter reads them)."""

from portal.customers.models import (
    ADDRESS_TYPES,
    CUSTOMER_STATUSES,
    CUSTOMER_TYPES,
    DOCUMENT_TYPES,
    GENDERS,
    LANGUAGES,
    LOYALTY_TIERS,
)

LABELS = {
    "customer_status": CUSTOMER_STATUSES,
    "customer_type": CUSTOMER_TYPES,
    "loyalty_tier": LOYALTY_TIERS,
    "document_type": DOCUMENT_TYPES,
    "address_type": ADDRESS_TYPES,
    "gender": GENDERS,
    "language": LANGUAGES,
    "audit_action": {
        "customer.created": "Cliente registrado",
        "customer.updated": "Datos actualizados",
        "customer.status_changed": "Cambio de estado",
        "address.created": "Dirección agregada",
        "address.updated": "Dirección actualizada",
        "address.deactivated": "Dirección desactivada",
    },
}
