"""Spanish labels of the API's codes: scopes for the keys page, problem codes for the reference."""

from portal.api.models import SCOPES

PROBLEMS = {
    "unauthorized": "Falta la clave API, o está revocada o mal escrita (401).",
    "insufficient_scope": "La clave no tiene el permiso de la operación (403).",
    "rate_limited": "Demasiadas solicitudes con esta clave; espere y reintente (429).",
    "invalid_json": "El cuerpo no es un objeto JSON (400).",
    "invalid_request": "Datos inválidos; `errors` indica cada campo (422).",
    "idempotency_key_required": "Falta la cabecera Idempotency-Key o no es válida (422).",
    "idempotency_key_reused": "La Idempotency-Key ya se usó con otro cuerpo (409).",
    "customer_not_found": "No existe el cliente en la organización de la clave (404).",
    "charge_not_found": "No existe el cargo en la organización de la clave (404).",
    "insufficient_credit": "El monto supera el crédito disponible (422).",
    "account_suspended": "La cuenta de crédito está suspendida (422).",
    "account_not_approved": "El cliente no tiene una cuenta de crédito aprobada (422).",
    "overdue_hold": "La cuenta tiene cargos vencidos sin pagar (422).",
    "customer_blocked": "El cliente está bloqueado (422).",
    "customer_inactive": "El cliente está inactivo (422).",
    "order_already_charged": "La orden ya tiene un cargo por otro monto o en otra cuenta (409).",
    "charge_not_cancellable": "El cargo no está pendiente o ya tiene pagos aplicados (409).",
    "not_found": "La ruta no existe (404).",
    "method_not_allowed": "Método no permitido en esta ruta (405).",
    "internal_error": "Error inesperado; ya quedó registrado (500).",
}
LABELS = {"api_scope": SCOPES}
