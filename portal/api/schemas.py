"""What goes in and out of the API (marshmallow schemas); the OpenAPI document is built on them."""

from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from portal.credit.models import ACCOUNT_STATUSES, USAGE_STATUSES
from portal.customers.models import CUSTOMER_STATUSES, DOCUMENT_TYPES, LOYALTY_TIERS

MONEY_PATTERN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"
ORDER_NUMBER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
MAX_AMOUNT = Decimal("9999999999.99")


# Marshmallow's messages, in Spanish: people read `detail` and `errors`.
FIELD_MESSAGES = {
    "required": "Falta este campo.",
    "null": "No puede ser nulo.",
    "invalid": "Valor inválido.",
    "invalid_uuid": "No es un UUID válido.",
    "validator_failed": "Valor inválido.",
}
SCHEMA_MESSAGES = {"unknown": "Campo desconocido.", "type": "Se esperaba un objeto JSON."}


class ApiSchema(Schema):
    """A schema whose validation messages are Spanish."""

    error_messages = SCHEMA_MESSAGES

    def on_bind_field(self, field_name, field_obj):
        field_obj.error_messages = field_obj.error_messages | {
            key: message
            for key, message in FIELD_MESSAGES.items()
            if key in field_obj.error_messages
        }


def _money(**kwargs):
    return fields.Decimal(as_string=True, places=2, metadata={"example": "180.00"}, **kwargs)


class CustomerQuerySchema(ApiSchema):
    """Exactly one of email, phone or document (as typed: it is normalised like staff search)."""

    email = fields.String(validate=validate.Length(min=1, max=255))
    phone = fields.String(validate=validate.Length(min=1, max=30))
    document = fields.String(validate=validate.Length(min=1, max=50))

    @validates_schema
    def exactly_one(self, data, **kwargs):
        if len(data) != 1:
            raise ValidationError("Indique exactamente uno de email, phone o document.")


class CustomerSchema(ApiSchema):
    """A customer of the organization."""

    customer_id = fields.UUID(required=True)
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)
    email = fields.String(allow_none=True, required=True)
    phone = fields.String(allow_none=True, required=True)
    document_type = fields.String(
        allow_none=True, required=True, validate=validate.OneOf(list(DOCUMENT_TYPES))
    )
    document_number = fields.String(allow_none=True, required=True)
    status = fields.String(required=True, validate=validate.OneOf(list(CUSTOMER_STATUSES)))
    loyalty_tier = fields.String(
        allow_none=True, required=True, validate=validate.OneOf(list(LOYALTY_TIERS))
    )


class CreditSchema(ApiSchema):
    """A customer's credit standing: may the order be charged, and how much is available."""

    customer_id = fields.UUID(required=True)
    customer_status = fields.String(required=True, validate=validate.OneOf(list(CUSTOMER_STATUSES)))
    credit_account_id = fields.UUID(allow_none=True, required=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(["none", *ACCOUNT_STATUSES]),
        metadata={"description": "none: the customer has no credit account."},
    )
    credit_limit = _money(required=True)
    credit_used = _money(required=True)
    credit_available = _money(required=True)
    overdue_hold = fields.Boolean(
        required=True, metadata={"description": "Overdue charges block new ones."}
    )
    payment_term_days = fields.Integer(allow_none=True, required=True)
    currency = fields.String(required=True, validate=validate.OneOf(["USD"]))


class ChargeCreateSchema(ApiSchema):
    """A charge of an order to the customer's credit account."""

    customer_id = fields.UUID(required=True)
    order_id = fields.UUID(required=True)
    order_number = fields.String(
        required=True,
        validate=validate.Regexp(
            ORDER_NUMBER_PATTERN, error="Número de orden inválido (1 a 64 letras o dígitos)."
        ),
    )
    amount = fields.String(
        required=True,
        validate=validate.Regexp(MONEY_PATTERN, error="Monto inválido: use 180.00."),
        metadata={"example": "180.00", "description": "US$, greater than zero."},
    )

    @post_load
    def amount_as_decimal(self, data, **kwargs):
        amount = Decimal(data["amount"])
        if not Decimal("0") < amount <= MAX_AMOUNT:
            raise ValidationError("El monto debe ser mayor que cero.", "amount")
        return data | {"amount": amount}


class StandingSchema(ApiSchema):
    """The account's figures after the change."""

    credit_limit = _money(required=True)
    credit_used = _money(required=True)
    credit_available = _money(required=True)


class ChargeSchema(ApiSchema):
    """A charge (credit usage) of one order."""

    charge_id = fields.UUID(required=True)
    customer_id = fields.UUID(required=True)
    credit_account_id = fields.UUID(required=True)
    order_id = fields.UUID(required=True)
    order_number = fields.String(allow_none=True, required=True)
    amount = _money(required=True)
    status = fields.String(required=True, validate=validate.OneOf(list(USAGE_STATUSES)))
    due_date = fields.Date(required=True)
    created_at = fields.DateTime(required=True)
    cancelled_at = fields.DateTime(allow_none=True, required=True)
    credit = fields.Nested(StandingSchema, required=True)


class ProblemSchema(ApiSchema):
    """An RFC 9457 problem; `code` is stable, `detail` is Spanish for people."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field errors of an invalid request."},
    )


def field_errors(error: ValidationError) -> dict[str, list[str]]:
    """Marshmallow's messages as {field: [messages]}; errors of the whole body under "body"."""
    flat: dict[str, list[str]] = {}

    def walk(prefix: str, messages) -> None:
        if isinstance(messages, dict):
            for key, value in messages.items():
                name = "body" if key == "_schema" else str(key)
                walk(f"{prefix}.{name}" if prefix else name, value)
        else:
            items = messages if isinstance(messages, list) else [messages]
            flat.setdefault(prefix or "body", []).extend(str(item) for item in items)

    walk("", error.messages)
    return flat
