"""Layout in Chromium: search from anywhere by keyboard, every page on a phone, wide tables."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import DEMO_EMAILS, log_in, pages_reached

PHONE = {"width": 390, "height": 844}


def _login(page, email: str) -> None:
    log_in(page, email, factories.TEST_PASSWORD)


def test_search_from_another_page_with_the_keyboard_only(page, org_a):
    irene = factories.customer_create(
        org_a.organization_id, first_name="Irene", last_name="Rodríguez"
    )
    factories.customer_create(org_a.organization_id, first_name="Irma", last_name="Castillo")
    _login(page, org_a.users["branch_staff"].email)
    page.goto("/segments/")
    page.keyboard.press("/")
    box = page.get_by_role("combobox", name="Buscar cliente")
    expect(box).to_be_focused()
    page.keyboard.type("irene rodrig", delay=30)
    options = page.get_by_role("option")
    expect(options.first).to_contain_text("Irene Rodríguez")
    expect(box).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", "quick-option-1")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"/customers/{irene.customer_id}$"))
    # On the customer page, Ctrl+K and an empty box: the customer just opened comes first.
    page.keyboard.press("Control+k")
    expect(box).to_be_focused()
    expect(page.locator("#quick-heading")).to_have_text("Clientes recientes")
    expect(options.first).to_contain_text("Irene Rodríguez")
    page.keyboard.press("Escape")
    expect(box).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#quick-results")).to_be_hidden()


def test_slash_types_a_slash_inside_another_field(page, org_a):
    _login(page, org_a.users["branch_staff"].email)
    page.goto("/customers/")
    page.locator("#q").click()
    page.keyboard.type("8/1")
    expect(page.locator("#q")).to_have_value("8/1")
    expect(page.get_by_role("combobox", name="Buscar cliente")).not_to_be_focused()


def test_enter_in_the_customers_search_sends_one_request(page, org_a):
    factories.customer_create(org_a.organization_id, first_name="Irene", last_name="Rodríguez")
    _login(page, org_a.users["branch_staff"].email)
    page.goto("/customers/")
    page.locator("#q").fill("irene")
    expect(page.locator("#customer-results tbody tr.customer-row")).to_have_count(1)
    page.wait_for_load_state("networkidle")
    searches = []
    page.on(
        "request",
        lambda request: (
            searches.append(request.url) if urlsplit(request.url).path == "/customers/" else None
        ),
    )
    page.locator("#q").press("Enter")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(400)  # a delayed trigger would fire by now
    assert len(searches) == 1, searches


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("email", DEMO_EMAILS)
def test_every_page_a_role_reaches_fits_a_phone(browser, live_server, demo, email):
    """Follow the links of each page (one page per URL shape) at 390 px: no horizontal scroll."""
    context = browser.new_context(base_url=live_server, locale="es-PA", viewport=PHONE)
    page = context.new_page()
    log_in(page, email)
    shapes, too_wide = [], []
    for shape in pages_reached(page):
        shapes.append(shape)
        if not _fits(page):
            too_wide.append(f"{shape}: {page.evaluate('document.documentElement.scrollWidth')}")
    context.close()
    assert len(shapes) >= 6, shapes
    assert too_wide == []


def test_the_menu_and_the_filters_fold_on_a_phone(browser, live_server, org_a):
    context = browser.new_context(base_url=live_server, locale="es-PA", viewport=PHONE)
    page = context.new_page()
    _login(page, org_a.users["org_admin"].email)
    page.goto("/customers/")
    expect(page.get_by_role("link", name="Usuarios")).to_be_hidden()
    page.locator(".nav-menu > summary").click()
    expect(page.get_by_role("link", name="Usuarios")).to_be_visible()
    expect(page.get_by_label("Estado")).to_be_hidden()
    page.locator(".filters-fold > summary").click()
    expect(page.get_by_label("Estado")).to_be_visible()
    context.close()


def test_wide_screens_keep_phones_on_one_line_and_the_aging_table_in_its_box(
    browser, live_server, demo
):
    context = browser.new_context(
        base_url=live_server, locale="es-PA", viewport={"width": 1366, "height": 900}
    )
    page = context.new_page()
    log_in(page, "admin@demo.pa")
    expect(page.get_by_role("link", name="Usuarios")).to_be_visible()  # no menu button here
    for url in ("/customers/", "/collections/"):
        page.goto(url)
        lines = page.eval_on_selector_all(
            "td.phone",
            """cells => cells.map(cell => {
                 const range = document.createRange(); range.selectNodeContents(cell);
                 const tops = Array.from(range.getClientRects()).map(r => Math.round(r.top));
                 return new Set(tops).size;
               })""",
        )
        assert lines and max(lines) == 1, (url, lines)
    page.goto("/credit/aging")
    widths = page.evaluate(
        "[document.querySelector('#aging-table').getBoundingClientRect().right,"
        " document.querySelector('main').getBoundingClientRect().right]"
    )
    assert widths[0] <= widths[1] + 0.5, widths
    context.close()


def test_an_inline_address_edit_keeps_the_focus_and_confirms_with_a_toast(page, org_a):
    irene = factories.customer_create(
        org_a.organization_id, first_name="Irene", last_name="Rodríguez"
    )
    factories.address_create(org_a.organization_id, irene.customer_id, city="Colón")
    _login(page, org_a.users["branch_staff"].email)
    page.goto(f"/customers/{irene.customer_id}")
    edit = page.locator(".address-row").get_by_role("link", name="Editar")
    edit.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".address-form select, .address-form input:visible").first).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator(".address-form")).to_have_count(0)
    expect(edit).to_be_focused()
    page.keyboard.press("Enter")
    page.locator("#city").fill("")
    page.get_by_role("button", name="Guardar dirección").click()
    expect(page.locator("#city")).to_be_focused()  # the first invalid field
    page.keyboard.type("David")
    page.keyboard.press("Enter")
    expect(page.locator("#toasts")).to_contain_text("Dirección de Irene Rodríguez guardada.")
    expect(page.locator(".address-row")).to_contain_text("David")
    expect(page.locator("#timeline")).to_contain_text("David")  # the history, without a reload
    expect(edit).to_be_focused()


def test_the_skip_link_jumps_to_the_content(page, org_a):
    _login(page, org_a.users["branch_staff"].email)
    page.goto("/segments/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Saltar al contenido")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
