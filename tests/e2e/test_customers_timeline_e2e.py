"""Staff flows in Chromium: a note added inline shows in the timeline; a company found by name."""

import re

import pytest
from playwright.sync_api import expect

from tests import factories


@pytest.fixture
def staff_page(page, org_a):
    """A browser logged in as org A's branch staff."""
    page.goto("/login")
    page.get_by_label("Correo electrónico").fill(org_a.users["branch_staff"].email)
    page.get_by_label("Contraseña").fill(factories.TEST_PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    expect(page).not_to_have_url(re.compile(r"/login"))
    return page


def test_a_note_added_inline_shows_in_the_timeline(staff_page, org_a):
    customer = factories.customer_create(
        org_a.organization_id, first_name="Irene", last_name="Rodríguez"
    )
    page = staff_page
    page.goto(f"/customers/{customer.customer_id}")
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Agregar nota").click()
    expect(page.locator("#timeline-card .field-error")).to_contain_text("Escriba la nota.")
    page.locator("#note_body").fill("Pidió factura a nombre de su empresa.")
    page.get_by_role("button", name="Agregar nota").click()
    expect(page.locator("#timeline")).to_contain_text("Pidió factura a nombre de su empresa.")
    expect(page.locator("#timeline-card [role=status]")).to_contain_text(
        "Nota agregada a Irene Rodríguez."
    )
    expect(page.locator("#note_body")).to_have_value("")
    page.get_by_label("Mostrar").select_option("change")  # only field changes: no notes
    expect(page.locator("#timeline-card")).not_to_contain_text("Pidió factura")
    page.get_by_label("Mostrar").select_option("note")
    expect(page.locator("#timeline")).to_contain_text("Pidió factura a nombre de su empresa.")
    assert page.evaluate("window.notReloaded") is True


def test_a_company_is_created_and_found_by_its_legal_name(staff_page):
    page = staff_page
    page.goto("/customers/new")
    expect(page.get_by_label("Razón social")).to_be_hidden()
    expect(page.get_by_label("Fecha de nacimiento")).to_be_visible()
    page.get_by_label("Tipo de cliente").select_option("b2b")
    expect(page.get_by_label("Razón social")).to_be_visible()
    expect(page.get_by_label("Fecha de nacimiento")).to_be_hidden()
    expect(page.get_by_label("Género")).to_be_hidden()
    page.get_by_label("Razón social").fill("Distribuidora Cerro Azul, S.A.")
    page.get_by_label("Nombre", exact=True).fill("Marta")
    page.get_by_label("Apellido", exact=True).fill("Quintero")
    page.get_by_label("Tipo de documento").select_option("ruc")
    page.get_by_label("Número de documento").fill("155587169-2-2014 DV 9")
    page.get_by_role("button", name="Guardar").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Distribuidora Cerro Azul, S.A.")
    expect(page.locator("#contact-name")).to_have_text("Marta Quintero")
    page.goto("/customers/")
    page.get_by_placeholder("Nombre, correo, teléfono o documento").press_sequentially(
        "cerro azul", delay=40
    )
    rows = page.locator("#customer-results tbody tr.customer-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Distribuidora Cerro Azul, S.A.")
