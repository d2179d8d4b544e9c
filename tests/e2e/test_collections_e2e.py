"""The collections worklist in Chromium: a collector filters it, opens an account, logs a call
with a promise to pay, and goes back to the next row."""

import re
from datetime import timedelta

from playwright.sync_api import expect

from portal import clock
from tests.e2e.test_credit_e2e import _login
from tests.test_collections import overdue_accounts


def test_a_collector_works_the_worklist(page, org_a):
    accounts = overdue_accounts(org_a)
    _login(page, org_a.users["credit_staff"])
    page.goto("/collections/")
    rows = page.locator("#worklist tbody tr[id^=worklist-]")
    expect(rows).to_have_count(3)

    page.get_by_label("Antigüedad").select_option("days_31_60")  # htmx swaps the table
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"bucket=days_31_60"))  # the URL keeps the filter
    beto = page.locator(f"#worklist-{accounts['Beto']}")
    beto.get_by_role("link", name="Ver cuenta").click()

    due = (clock.today() + timedelta(days=5)).isoformat()
    page.get_by_label("Resultado").select_option("promise")
    page.get_by_label("Monto prometido (US$)").fill("150.00")
    page.get_by_label("Fecha prometida").fill(due)
    page.get_by_label("Nota").fill("Paga el viernes en la sucursal")
    page.get_by_role("button", name="Registrar contacto").click()
    expect(page.locator("#contact-message")).to_contain_text("Contacto registrado. Cliente: Beto")
    expect(page.locator("#contacts")).to_contain_text("Llamada · Promesa de pago")
    expect(page.locator("#contacts")).to_contain_text("Promesa: US$150.00")

    page.goto("/collections/")
    row = page.locator(f"#worklist-{accounts['Beto']}")
    expect(row).to_contain_text("US$150.00")
    expect(row).to_contain_text("Promesa de pago")
    # The next row: Ana, not yet worked.
    page.locator(f"#worklist-{accounts['Ana']}").get_by_role("link", name="Ver cuenta").click()
    expect(page.locator("#contact-log")).to_contain_text("Sin contactos registrados")
