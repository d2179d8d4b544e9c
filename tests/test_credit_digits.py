"""Money and term fields take ASCII digits only, with Panama's "," and "." separators."""

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import clock
from portal.audit import AuditEntry
from portal.credit.models import CreditAccount, CreditPayment, CreditRequest, CreditUsage
from portal.credit.services import credit_request_pending
from portal.extensions import db
from portal.money import money_parse
from portal.settings.models import OrganizationSettings
from tests import factories

HTMX = {"HX-Request": "true"}
ARABIC_INDIC = "\u0661\u0662\u0663"  # 123
FULL_WIDTH = "\uff11\uff10\uff10"  # 100
MIXED = "1\u06602"  # 1, Extended Arabic-Indic zero, 2
NOT_ASCII = [ARABIC_INDIC, FULL_WIDTH, MIXED, "\u0967\u0968"]  # the last: Devanagari 12
MONEY_MESSAGE = "Ingrese un monto en números, por ejemplo 125.50."
TERM_MESSAGE = "Plazo entre 1 y 365 días."


@pytest.mark.parametrize(
    "text, amount",
    [
        ("1500", "1500.00"),
        ("1,500.00", "1500.00"),
        ("12,345,678.9", "12345678.90"),
        ("US$1,250.5", "1250.50"),
        ("$ 75", "75.00"),
    ],
)
def test_ascii_amounts_with_panama_separators_are_read(text, amount):
    assert money_parse(text) == Decimal(amount)


@pytest.mark.parametrize(
    "text",
    [
        *NOT_ASCII,
        "1,50",
        "1.500,00",
        "12,34,567",
        ",100",
        "1 000",
        "1_000",
        "\u0661,\u0660\u0660\u0660",
    ],
)
def test_anything_else_is_refused_with_the_spanish_message(text):
    with pytest.raises(ValueError, match="monto en números"):
        money_parse(text)


@pytest.fixture
def desk(org_a):
    """An approved account with a charge, a pending request, and a customer without an account."""
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(
        org_a.organization_id, customer.customer_id, credit_used=Decimal("0")
    )
    newcomer = factories.customer_create(org_a.organization_id)
    waiting_customer = factories.customer_create(org_a.organization_id)
    waiting = factories.credit_account_create(
        org_a.organization_id, waiting_customer.customer_id, status="pending", credit_limit=0
    )
    with factories.scoped(org_a.organization_id):
        request_id = credit_request_pending(waiting.credit_account_id).credit_request_id
    return {
        "account": f"/credit/accounts/{account.credit_account_id}",
        "request": f"/credit/request/{newcomer.customer_id}",
        "approve": f"/credit/requests/{request_id}/approve",
    }


def _forms(desk):
    """(role, page to open, url, data, field under test, message) for every money/term field."""
    account = desk["account"]
    payment = {
        "payment_method": "cash",
        "payment_date": clock.today().isoformat(),
        "idempotency_key": str(uuid.uuid4()),
    }
    request, approve = desk["request"], desk["approve"]
    money, term = MONEY_MESSAGE, TERM_MESSAGE
    new_line = {"requested_limit": "500", "requested_term_days": "30", "request_notes": "Prueba"}
    order = {"order_number": "F-0000001"}
    lower, higher = {"approval_notes": "Baja"}, {"reason": "Sube"}
    return [
        ("branch_staff", request, request, new_line, "requested_limit", money),
        ("branch_staff", request, request, new_line, "requested_term_days", term),
        ("credit_approver", "/credit/queue", approve, {}, "credit_limit", money),
        ("credit_approver", "/credit/queue", approve, {}, "payment_term_days", term),
        ("credit_approver", account, f"{account}/limit", lower, "credit_limit", money),
        ("credit_staff", account, f"{account}/increase", higher, "requested_limit", money),
        ("credit_staff", account, f"{account}/usages", order, "amount", money),
        ("credit_staff", account, f"{account}/payments", payment, "amount", money),
        ("org_admin", "/settings/", "/settings/", {}, "max_credit_limit", money),
    ]  # fmt: skip


def _rows(org) -> dict:
    with factories.scoped(org.organization_id):
        counts = {
            model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (CreditAccount, CreditRequest, CreditUsage, CreditPayment, AuditEntry)
        }
        counts["limits"] = sorted(db.session.scalars(sa.select(CreditAccount.credit_limit)))
        counts["settings"] = list(db.session.scalars(sa.select(OrganizationSettings)))
        return {key: str(value) for key, value in counts.items()}


@pytest.mark.parametrize("digits", NOT_ASCII)
@pytest.mark.parametrize("form", range(9))
def test_every_money_and_term_field_refuses_non_ascii_digits(login_as, org_a, desk, form, digits):
    role, page, url, data, field, message = _forms(desk)[form]
    client = login_as(role)
    client.get(page)
    before = _rows(org_a)
    response = client.post(url, data | {field: digits}, headers=HTMX)
    assert response.status_code == 422, response.text
    assert message in response.text
    assert _rows(org_a) == before
