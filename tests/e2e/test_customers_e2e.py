"""Staff flows in Chromium: search as you type, inline address edit, duplicate email on create."""

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
    expect(page).to_have_url(re.compile(r"/$"))  # the home page
    page.goto("/customers/")
    return page


def test_typing_updates_results_without_a_page_load_and_the_url_follows(staff_page, org_a, org_b):
    factories.customer_create(org_a.organization_id, first_name="José", last_name="Pérez")
    factories.customer_create(org_a.organization_id, first_name="María", last_name="González")
    factories.customer_create(org_b.organization_id, first_name="José", last_name="Pérez Ajeno")
    page = staff_page
    page.evaluate("window.notReloaded = true")
    page.get_by_placeholder("Nombre, correo, teléfono o documento").press_sequentially(
        "jose perz", delay=40
    )
    rows = page.locator("#customer-results tbody tr.customer-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("José Pérez")
    expect(page).to_have_url(re.compile(r"\?q=jose(\+|%20)perz$"))
    assert page.evaluate("window.notReloaded") is True  # the page never reloaded
    page.get_by_label("Estado").select_option("blocked")
    expect(page.locator("#customer-results tbody tr.customer-row")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"\?q=jose(\+|%20)perz&status=blocked$"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?q=jose(\+|%20)perz$"))
    expect(page.locator("#customer-results tbody tr.customer-row")).to_have_count(1)


def test_editing_an_address_inline(staff_page, org_a):
    customer = factories.customer_create(org_a.organization_id, first_name="Ana")
    factories.address_create(
        org_a.organization_id, customer.customer_id, city="Colón", is_default=True
    )
    page = staff_page
    page.goto(f"/customers/{customer.customer_id}")
    page.evaluate("window.notReloaded = true")
    page.locator(".address-row").get_by_role("link", name="Editar").click()
    page.locator("#city").fill("")
    page.get_by_role("button", name="Guardar dirección").click()
    expect(page.get_by_text("Ingrese ciudad.")).to_be_visible()  # the error shows in place
    page.locator("#city").fill("David")
    page.get_by_role("button", name="Guardar dirección").click()
    expect(page.locator(".address-row")).to_contain_text("David")
    expect(page.locator(".address-form")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True
    page.reload()
    expect(page.locator(".address-row")).to_contain_text("David")


def test_adding_an_address_inline(staff_page, org_a):
    customer = factories.customer_create(org_a.organization_id, first_name="Ana")
    page = staff_page
    page.goto(f"/customers/{customer.customer_id}")
    page.get_by_role("button", name="Agregar dirección").click()
    page.get_by_label("Dirección", exact=True).fill("Calle 50, Torre Global")
    page.locator("#city").fill("Panamá")
    page.get_by_label("Dirección predeterminada").check()
    page.get_by_role("button", name="Guardar dirección").click()
    expect(page.locator(".address-row")).to_contain_text("Calle 50, Torre Global")
    expect(page.locator(".address-row")).to_contain_text("Predeterminada")


def test_creating_a_customer_with_a_duplicate_email_shows_the_field_error(staff_page, org_a):
    existing = factories.customer_create(
        org_a.organization_id, first_name="Carmen", last_name="Ríos", email="carmen.rios@correo.pa"
    )
    page = staff_page
    page.get_by_role("button", name="Nuevo cliente").click()
    page.get_by_label("Nombre", exact=True).fill("Carmen")
    page.get_by_label("Apellido").fill("Rios")
    page.get_by_label("Correo electrónico").fill("CARMEN.RIOS@correo.pa")
    expect(page.locator("#duplicates")).to_contain_text("Posibles duplicados")
    expect(page.locator("#duplicates")).to_contain_text("Carmen Ríos")
    page.get_by_role("button", name="Guardar").click()
    expect(page.locator("#email-error")).to_have_text("Ya existe un cliente con ese correo.")
    link = page.locator("#existing-customer a")
    expect(link).to_have_attribute("href", f"/customers/{existing.customer_id}")
