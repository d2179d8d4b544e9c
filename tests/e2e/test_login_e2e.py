"""Each demo role logs in through Chromium and sees the navigation of that role."""

import re

import pytest
from playwright.sync_api import expect

from portal.seed import DEMO_PASSWORD, demo_seed

NAVIGATION = {
    "admin@demo.pa": [
        "Clientes",
        "Cobranza",
        "Antigüedad",
        "Segmentos",
        "Eventos",
        "Usuarios",
        "Configuración",
    ],
    # Requesters: "Mis solicitudes", with the count of decisions they have not seen yet.
    "sucursal@demo.pa": ["Clientes", re.compile(r"^Mis solicitudes( \d+)?$"), "Segmentos"],
    "credito@demo.pa": [
        "Clientes",
        re.compile(r"^Mis solicitudes( \d+)?$"),
        "Cobranza",
        "Antigüedad",
        "Segmentos",
    ],
    "aprobador@demo.pa": [
        "Clientes",
        re.compile(r"^Aprobaciones \d+$"),
        "Cobranza",
        "Antigüedad",
        "Segmentos",
    ],
    "admin@otra.pa": [
        "Clientes",
        "Cobranza",
        "Antigüedad",
        "Segmentos",
        "Eventos",
        "Usuarios",
        "Configuración",
    ],
}


@pytest.fixture
def demo_data(app):
    with app.app_context():
        demo_seed(customers=20)


@pytest.mark.parametrize("email", sorted(NAVIGATION))
def test_demo_role_logs_in_and_sees_its_navigation(page, demo_data, email):
    page.goto("/customers/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fcustomers%2F$"))
    page.get_by_label("Correo electrónico").fill(email)
    page.get_by_label("Contraseña").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    expect(page).to_have_url("/customers/")
    expect(page.get_by_role("heading", name="Clientes")).to_be_visible()
    links = page.locator("#main-nav > li > a")
    expect(links).to_have_text(NAVIGATION[email])
    page.locator("details.dropdown > summary").click()  # the user menu
    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.get_by_text("Sesión cerrada.")).to_be_visible()


def test_wrong_password_shows_the_error_in_the_browser(page, demo_data):
    page.goto("/login")
    page.get_by_label("Correo electrónico").fill("admin@demo.pa")
    page.get_by_label("Contraseña").fill("equivocada")
    page.get_by_role("button", name="Entrar").click()
    expect(page.get_by_role("alert")).to_have_text("Correo o contraseña incorrectos.")


def _log_in(page, email, password):
    page.goto("/login")
    page.get_by_label("Correo electrónico").fill(email)
    page.get_by_label("Contraseña").fill(password)
    page.get_by_role("button", name="Entrar").click()


def test_admin_reset_gives_a_temporary_password_that_must_be_changed_first(
    page, browser, live_server, demo_data
):
    _log_in(page, "admin@demo.pa", DEMO_PASSWORD)
    page.goto("/users/")
    page.locator("tr", has_text="sucursal@demo.pa").get_by_role(
        "button", name="Restablecer contraseña"
    ).click()
    expect(page.get_by_role("heading", name="Restablecer contraseña")).to_be_visible()
    page.get_by_role("button", name="Sí, restablecer").click()
    temporary = page.locator("#temporary-password").inner_text()
    page.reload()
    expect(page.get_by_text("ya se mostró")).to_be_visible()
    expect(page.locator("#temporary-password")).to_have_count(0)

    context = browser.new_context(base_url=live_server, locale="es-PA")
    staff = context.new_page()
    _log_in(staff, "sucursal@demo.pa", temporary)
    expect(staff).to_have_url("/password")
    expect(staff.get_by_text("Su contraseña es temporal")).to_be_visible()
    staff.goto("/customers/")
    expect(staff).to_have_url("/password")
    staff.get_by_label("Contraseña actual").fill(temporary)
    staff.get_by_label("Nueva contraseña", exact=True).fill("mi nueva frase de sucursal")
    staff.get_by_label("Repita la nueva contraseña").fill("mi nueva frase de sucursal")
    staff.get_by_role("button", name="Cambiar contraseña").click()
    expect(staff).to_have_url("/")
    expect(staff.get_by_text("Contraseña cambiada.")).to_be_visible()
    context.close()
