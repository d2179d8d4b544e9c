"""The credit desk in Chromium: the queue from the keyboard, outcomes, actions in place."""

import re
import uuid
from decimal import Decimal

from playwright.sync_api import expect

from portal.credit.services import credit_request, usage_charge
from portal.extensions import db
from tests import factories
from tests.e2e.test_credit_e2e import _login


def _pending(org, *names):
    for first_name, last_name in names:
        customer = factories.customer_create(
            org.organization_id, first_name=first_name, last_name=last_name
        )
        with factories.scoped(org.organization_id):
            credit_request(
                customer_id=customer.customer_id,
                limit=Decimal("900"),
                term_days=30,
                notes="Compra de muebles para su negocio",
                requester=org.users["credit_staff"],
            )
            db.session.commit()


def test_the_queue_is_worked_with_the_keyboard_including_a_bulk_reject(page, org_a):
    _pending(org_a, ("Abel", "Mora"), ("Berta", "Núñez"), ("Ciro", "Pinto"))
    _login(page, org_a.users["credit_approver"])
    page.goto("/credit/queue")
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#queue-count")).to_have_text("3")

    first = page.locator(".queue-row", has_text="Abel Mora")
    first.focus()
    page.keyboard.press("Enter")  # opens the request, focus in the prefilled limit
    limit = page.locator(
        "#request-" + first.get_attribute("data-request") + " input[name=credit_limit]"
    )
    expect(limit).to_be_focused()
    expect(limit).to_have_value("900.00")
    page.keyboard.press("Enter")  # approves at the requested values
    expect(page.locator("#queue-messages")).to_contain_text("Crédito aprobado. Cliente: Abel Mora.")
    expect(page.locator(".queue-row", has_text="Abel Mora")).to_have_count(0)
    expect(page.locator("#queue-count")).to_have_text("2")
    expect(page.locator(".queue-row", has_text="Berta Núñez")).to_be_focused()

    page.keyboard.press("Space")  # selects Berta
    page.keyboard.press("ArrowDown")
    expect(page.locator(".queue-row", has_text="Ciro Pinto")).to_be_focused()
    page.keyboard.press("Space")  # selects Ciro
    page.locator("#bulk-notes").focus()
    page.keyboard.type("Sin referencias comerciales")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.locator("#bulk-reject")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#bulk-message")).to_have_text("2 solicitudes rechazadas.")
    expect(page.locator(".queue-row")).to_have_count(0)
    expect(page.locator("#queue-count")).to_have_text("0")
    assert page.evaluate("window.notReloaded") is True


def test_an_increase_is_requested_and_the_requester_sees_it_decided(
    page, browser, live_server, org_a
):
    customer = factories.customer_create(
        org_a.organization_id, first_name="Dalia", last_name="Ortega"
    )
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    _login(page, org_a.users["credit_staff"])
    page.goto(f"/credit/accounts/{account.credit_account_id}")
    form = page.locator("#increase-form")
    form.get_by_label("Límite solicitado (US$)").fill("2,000.00")
    form.get_by_label("Justificación").fill("Abrió una segunda tienda")
    form.get_by_role("button", name="Solicitar aumento").click()
    expect(page.locator("#ledger-message")).to_have_text(
        "Solicitud de aumento para Dalia Ortega enviada a aprobación."
    )
    expect(page.locator("#request-outcome")).to_contain_text("Pendiente")
    expect(page.locator("#request-outcome")).to_contain_text("Solicitado: US$2,000.00")

    approver = browser.new_context(base_url=live_server, locale="es-PA").new_page()
    _login(approver, org_a.users["credit_approver"])
    approver.goto("/credit/queue")
    row = approver.locator(".queue-row", has_text="Dalia Ortega")
    row.get_by_role("button", name="Decidir la solicitud de Dalia Ortega").click()
    detail = approver.locator(".request-detail")
    detail.get_by_label("Límite aprobado (US$)").fill("1,800.00")
    detail.get_by_label("Notas").fill("Aprobado por debajo de lo pedido")
    detail.get_by_role("button", name="Aprobar").click()
    expect(approver.locator("#queue-messages")).to_contain_text("Aumento aprobado.")
    approver.context.close()

    page.reload()
    expect(page.locator("#decisions-unseen")).to_have_text("1")
    expect(page.locator("#credit-limit")).to_have_text("US$1,800.00")
    expect(page.locator("#request-outcome")).to_contain_text("Aprobada por")
    page.get_by_role("link", name=re.compile("Mis solicitudes")).click()
    mine = page.locator("#my-requests tr", has_text="Dalia Ortega")
    expect(mine).to_contain_text("Aprobada")
    expect(mine).to_contain_text("Aprobado por debajo de lo pedido")
    expect(mine).to_contain_text("Nueva")
    expect(page.locator("#decisions-unseen")).to_have_count(0)


def test_suspend_and_reactivate_in_place(page, org_a):
    customer = factories.customer_create(
        org_a.organization_id, first_name="Elena", last_name="Vega"
    )
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    _login(page, org_a.users["credit_approver"])
    page.goto(f"/credit/accounts/{account.credit_account_id}")
    page.evaluate("window.notReloaded = true")
    page.get_by_label("Motivo de la suspensión").fill("Reporta pérdida de cédula")
    page.get_by_role("button", name="Suspender").click()
    expect(page.locator("#account-status")).to_have_text("Suspendida")
    expect(page.locator("#credit-live")).to_have_text("Cuenta de crédito de Elena Vega suspendida.")
    page.get_by_label("Notas de reactivación").fill("Identidad verificada")
    page.get_by_role("button", name="Reactivar").click()
    expect(page.locator("#account-status")).to_have_text("Aprobada")
    expect(page.locator("#credit-live")).to_have_text("Cuenta de crédito de Elena Vega reactivada.")
    expect(page.get_by_role("button", name="Suspender")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True


def test_a_payment_is_recorded_and_reversed_in_place(page, org_a):
    customer = factories.customer_create(
        org_a.organization_id, first_name="Fabio", last_name="Rangel"
    )
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    with factories.scoped(org_a.organization_id):
        usage_charge(
            account_id=account.credit_account_id,
            order_id=uuid.uuid4(),
            amount=Decimal("300.00"),
            actor=None,
        )
        db.session.commit()
    both = factories.staff_create(org_a.organization_id, ["credit_staff", "credit_approver"])
    _login(page, both)
    page.goto(f"/credit/accounts/{account.credit_account_id}")
    page.evaluate("window.notReloaded = true")
    form = page.locator("#payment-form")
    form.get_by_label("Monto (US$)").fill("120.00")
    form.get_by_label("Método").select_option("check")
    form.get_by_label("Referencia").fill("CHQ-881")
    form.get_by_role("button", name="Registrar pago").click()
    expect(page.locator("#credit-live")).to_have_text("Pago de Fabio Rangel registrado.")
    expect(page.locator("#credit-available")).to_have_text("US$820.00")
    payment = page.locator("#payments tbody tr").first
    expect(payment).to_contain_text("Pago · Cheque")
    payment.get_by_label(re.compile("Motivo de la reversión")).fill("Cheque devuelto")
    payment.get_by_role("button", name="Revertir").click()
    expect(page.locator("#credit-live")).to_have_text("Pago de Fabio Rangel revertido.")
    expect(page.locator("#credit-available")).to_have_text("US$700.00")
    expect(page.locator("#payments tbody tr").first).to_contain_text("Pago revertido · Cheque")
    assert page.evaluate("window.notReloaded") is True
