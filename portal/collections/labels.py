"""Spanish labels of the collections codes staff see (the `label` filter reads them)."""

from portal.collections.models import CHANNELS, OUTCOMES, PROMISE_STATES, SYSTEM_OUTCOMES

LABELS = {
    "contact_channel": CHANNELS,
    "contact_outcome": OUTCOMES | SYSTEM_OUTCOMES,
    "promise_state": PROMISE_STATES,
    "audit_action": {
        "collections.assigned": "Cuenta asignada a cobrador",
        "collections.contact_logged": "Contacto de cobranza registrado",
        "collections.promise_settled": "Promesa de pago cumplida o incumplida",
        "collections.dunning_level_saved": "Nivel de recordatorio guardado",
        "collections.letter_mailed": "Carta de cobranza enviada",
        "collections.statement_sent": "Estado de cuenta enviado por correo",
    },
}
