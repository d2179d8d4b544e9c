"""Spanish labels of the outbound event types and delivery states."""

EVENT_TYPES = {
    "customer.credit.approved": "Crédito aprobado",
    "customer.credit.suspended": "Crédito suspendido",
    "customer.credit.limit_changed": "Límite de crédito cambiado",
    "customer.updated": "Cliente actualizado",
    "customer.segment_changed": "Segmento cambiado",
}
DELIVERY_STATUSES = {"pending": "Pendiente", "delivered": "Entregado", "failed": "Fallido"}
LABELS = {"webhook_event": EVENT_TYPES, "webhook_delivery": DELIVERY_STATUSES}
