"""Spanish labels of the event codes staff see in the inbox (the `label` filter reads them)."""

from portal.events.models import EVENT_TYPES, INBOX_STATUSES

LABELS = {
    "event_type": EVENT_TYPES,
    "inbox_status": INBOX_STATUSES,
    # The fields of an event's data, as the inbox shows them.
    "event_field": {
        "customer_id": "Cliente",
        "old_tier": "Nivel anterior",
        "new_tier": "Nivel nuevo",
        "order_id": "Orden",
        "order_number": "Número de orden",
        "total": "Total",
        "completed_at": "Completada",
    },
}
