"""The Back button in Chromium: "Cargar más" is restored, and a fixed form is never re-posted."""

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
    return page


def test_back_after_load_more_twice_shows_the_same_rows_at_the_same_place(staff_page, org_a):
    for number in range(80):
        factories.customer_create(
            org_a.organization_id, first_name=f"Cliente{number:02d}", last_name="Retroceso"
        )
    page = staff_page
    page.goto("/customers/?q=retroceso")
    rows = page.locator("#customer-results tbody tr.customer-row")
    expect(rows).to_have_count(25)
    page.get_by_role("button", name="Cargar más").click()
    expect(rows).to_have_count(50)
    page.get_by_role("button", name="Cargar más").click()
    expect(rows).to_have_count(75)
    expect(page).to_have_url(re.compile(r"[?&]pages=3"))
    chosen = rows.nth(70).get_by_role("link")
    name = chosen.inner_text()
    chosen.scroll_into_view_if_needed()
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0
    chosen.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    page.go_back()
    expect(page).to_have_url(re.compile(r"[?&]pages=3"))
    expect(rows).to_have_count(75)
    expect(rows.nth(70)).to_contain_text(name)
    expect(page.get_by_role("button", name="Cargar más")).to_be_visible()
    # The browser scrolls back to where the list was left, not to the top of the page.
    page.wait_for_function(f"Math.abs(window.scrollY - {scrolled}) < 100")


def test_back_after_an_error_then_a_save_never_posts_the_form_again(staff_page):
    page = staff_page
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else 0)
    page.goto("/customers/new")
    page.locator("#first_name").fill("Irene")
    page.get_by_role("button", name="Guardar").click()
    expect(page.get_by_text("Ingrese apellido.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/customers/new$"))  # redirected after the POST
    expect(page.locator("#first_name")).to_have_value("Irene")  # kept
    page.locator("#last_name").fill("Rodríguez")
    page.get_by_role("button", name="Guardar").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Irene Rodríguez")
    assert len(posts) == 2
    page.go_back()
    expect(page).to_have_url(re.compile(r"/customers/new$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Nuevo cliente")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/customers/new$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Nuevo cliente")
    assert len(posts) == 2, posts  # going back never re-posted
