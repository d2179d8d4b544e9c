"""Credit flows in Chromium: approving from the queue, recording a payment without a reload."""

import re
import uuid
from decimal import Decimal

from playwright.sync_api import expect

from portal.credit.services import credit_request, usage_charge
from portal.extensions import db
from tests import factories


def _login(page, user):
    page.goto("/login")
    page.get_by_label("Correo electrónico").fill(user.email)
    page.get_by_label("Contraseña").fill(factories.TEST_PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    expect(page).to_have_url(re.compile(r"/$"))


def test_approver_approves_from_the_queue(page, org_a):
    customer = factories.customer_create(
        org_a.organization_id, first_name="Rosa", last_name="Atencio"
    )
    other = factories.customer_create(org_a.organization_id, first_name="Iván", last_name="Solís")
    with factories.scoped(org_a.organization_id):
        for who in (customer, other):
            credit_request(
                customer_id=who.customer_id,
                limit=Decimal("800"),
                term_days=30,
                notes="Compra de materiales",
                requester=org_a.users["credit_staff"],
            )
        db.session.commit()
    _login(page, org_a.users["credit_approver"])
    expect(page.locator("#queue-count")).to_have_text("2")
    page.get_by_role("link", name=re.compile("Aprobaciones")).click()
    page.evaluate("window.notReloaded = true")
    item = page.locator(".queue-item", has_text="Rosa Atencio")
    item.get_by_role("button", name="Decidir la solicitud de Rosa Atencio").click()
    item.get_by_label("Límite aprobado").fill("750.00")
    item.get_by_role("button", name="Aprobar").click()
    expect(page.get_by_text("Crédito aprobado. Cliente: Rosa Atencio.")).to_be_visible()
    expect(page.locator(".queue-item", has_text="Rosa Atencio")).to_have_count(0)
    expect(page.locator("#queue-count")).to_have_text("1")
    expect(page.locator(".queue-item", has_text="Iván Solís")).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True


def test_credit_staff_record_a_payment_and_see_the_allocation(page, org_a):
    customer = factories.customer_create(
        org_a.organization_id, first_name="Tomás", last_name="Cedeño"
    )
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    for amount in ("100.00", "300.00"):
        with factories.scoped(org_a.organization_id):
            usage_charge(
                account_id=account.credit_account_id,
                order_id=uuid.uuid4(),
                amount=Decimal(amount),
                actor=None,
            )
            db.session.commit()
    _login(page, org_a.users["credit_staff"])
    page.goto(f"/credit/accounts/{account.credit_account_id}")
    expect(page.locator("#credit-available")).to_have_text("US$600.00")
    page.evaluate("window.notReloaded = true")
    form = page.locator("#payment-form")
    form.get_by_label("Monto (US$)").fill("150.00")
    form.get_by_label("Método").select_option("cash")
    form.get_by_label("Referencia").fill("REC-001")
    form.get_by_role("button", name="Registrar pago").click()
    expect(page.locator("#ledger-message")).to_have_text("Pago de Tomás Cedeño registrado.")
    expect(page.locator("#credit-available")).to_have_text("US$750.00")
    allocations = page.locator("#payments .allocations").first
    expect(allocations).to_contain_text("US$100.00")
    expect(allocations).to_contain_text("US$50.00")
    expect(page.locator("#usages .usage-paid")).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True
    # An overpayment is refused in place, and nothing changes.
    form = page.locator("#payment-form")
    form.get_by_label("Monto (US$)").fill("999.00")
    form.get_by_role("button", name="Registrar pago").click()
    expect(page.locator("#payment-amount-error")).to_contain_text("el saldo es US$250.00")
    expect(page.locator("#credit-available")).to_have_text("US$750.00")
