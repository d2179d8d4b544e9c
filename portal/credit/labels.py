"""Spanish labels of the credit codes staff see (the `label` filter reads them)."""

from portal.credit.models import (
    ACCOUNT_STATUSES,
    PAYMENT_KINDS,
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
    "payment_kind": PAYMENT_KINDS,
    # A line of the customer's recent credit activity.
    "credit_movement": {
        "usage": "Cargo",
        "usage_cancelled": "Cargo anulado",
        "payment": "Pago",
        "payment_reversed": "Pago revertido",
        "write_off": "Castigo",
    },
    # The account's transitions, as the customer's timeline names them.
    "audit_action": {
        "credit.requested": "Crédito solicitado",
        "credit.approved": "Crédito aprobado",
        "credit.rejected": "Solicitud de crédito rechazada",
        "credit.suspended": "Crédito suspendido",
        "credit.reactivated": "Crédito reactivado",
        "credit.limit_changed": "Límite de crédito reducido",
        "credit.closed": "Cuenta de crédito cerrada",
        "credit.increase_requested": "Aumento de límite solicitado",
        "credit.increase_approved": "Aumento de límite aprobado",
        "credit.increase_rejected": "Aumento de límite rechazado",
        "credit.write_off_requested": "Castigo de saldo solicitado",
        "credit.write_off_approved": "Saldo castigado",
        "credit.write_off_rejected": "Castigo de saldo rechazado",
        "credit.payment_reversed": "Pago revertido",
        "credit.late_fee_posted": "Recargo por mora",
        "credit.late_fee_waived": "Recargo por mora condonado",
        "credit.late_fees_exemption": "Exoneración de recargos por mora",
    },
}


def label_sql(column: str, kind: str) -> str:
    """A SQL CASE giving the Spanish label of a code column (for reports built in SQL)."""
    whens = " ".join(
        f"WHEN '{code}' THEN '{text.replace(chr(39), chr(39) * 2)}'"
        for code, text in LABELS[kind].items()
    )
    return f"(CASE {column} {whens} ELSE {column} END)"


def charge_name_sql(usage: str) -> str:
    """SQL naming the charge row `usage` as staff know it, in lower case: «orden F-0012345»
    (the number from the purchases projection, else the start of the internal id) or
    «recargo por mora 11/2026»."""
    number = (
        f"coalesce((SELECT o.order_number FROM purchases o WHERE o.order_id = {usage}.order_id),"
        f" left({usage}.order_id::text, 8))"
    )
    return (
        f"(CASE WHEN {usage}.kind = 'late_fee'"
        f" THEN 'recargo por mora ' || to_char({usage}.fee_period, 'MM/YYYY')"
        f" ELSE 'orden ' || {number} END)"
    )
