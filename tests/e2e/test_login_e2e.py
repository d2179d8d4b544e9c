"""Each demo role logs in through Chromium and sees the navigation of that role."""

import re

import pytest
from playwright.sync_api import expect

from portal.seed import DEMO_PASSWORD, demo_seed

NAVIGATION = {
    "admin@demo.pa": [
        "Clientes",
        "Antigüedad",
        "Segmentos",
        "Eventos",
        "Usuarios",
        "Configuración",
    ],
    "sucursal@demo.pa": ["Clientes", "Segmentos"],
    "credito@demo.pa": ["Clientes", "Antigüedad", "Segmentos"],
    "aprobador@demo.pa": ["Clientes", re.compile(r"^Aprobaciones \d+$"), "Antigüedad", "Segmentos"],
    "admin@otra.pa": [
        "Clientes",
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
    page.locator("summary").click()
    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.get_by_text("Sesión cerrada.")).to_be_visible()


def test_wrong_password_shows_the_error_in_the_browser(page, demo_data):
    page.goto("/login")
    page.get_by_label("Correo electrónico").fill("admin@demo.pa")
    page.get_by_label("Contraseña").fill("equivocada")
    page.get_by_role("button", name="Entrar").click()
    expect(page.get_by_role("alert")).to_have_text("Correo o contraseña incorrectos.")
