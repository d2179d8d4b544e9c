"""Browser tests: the real portal on 127.0.0.1, driven by Debian's Chromium via Playwright."""

import re
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import make_server

from portal.embedded import free_port
from portal.extensions import db
from portal.seed import DEMO_ORG_ID, DEMO_PASSWORD, DEMO_USERS, demo_seed

CHROMIUM = "/usr/bin/chromium"
# Refused forms answer 400/401/409/422 on purpose; Chromium logs those as console errors.
EXPECTED_REFUSAL = re.compile(r"status of (400|401|409|422) ")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(items):
    """Mark the browser tests as e2e (this hook sees every collected item, not only ours)."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def live_server(app):
    """The test app served by a threaded WSGI server on a free loopback port."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (no cookies) per test; fails the test on any page error."""
    context = browser.new_context(base_url=live_server, locale="es-PA")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not EXPECTED_REFUSAL.search(message.text)
            else None
        ),
    )
    yield page
    context.close()
    assert errors == [], f"browser errors: {errors}"


# Every demo role of the demo organization, by e-mail.
DEMO_EMAILS = sorted(email for email, _, _ in DEMO_USERS[DEMO_ORG_ID])
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NOT_PAGES = re.compile(r"^/(static|api)/|/logout$|\.csv$|format=(csv|pdf)")


@pytest.fixture
def demo(app):
    """The demo organizations, small."""
    with app.app_context():
        demo_seed(customers=20)
        db.session.remove()


def log_in(page, email: str, password: str = DEMO_PASSWORD) -> None:
    """Log in through the form and wait to leave it."""
    page.goto("/login")
    page.get_by_label("Correo electrónico").fill(email)
    page.get_by_label("Contraseña").fill(password)
    page.get_by_role("button", name="Entrar").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def pages_reached(page, *, limit: int = 40) -> Iterator[str]:
    """Open each page the logged-in user reaches by following links from home, one page per URL
    shape (ids replaced); yields each HTML page's shape once it has loaded."""
    queue, shapes = ["/"], set()
    while queue and len(shapes) < limit:
        url = queue.pop(0)
        shape = UUID_TEXT.sub("{id}", urlsplit(url).path)
        if shape in shapes or NOT_PAGES.search(url):
            continue
        shapes.add(shape)
        response = page.goto(url)
        if response is None or "text/html" not in response.headers.get("content-type", ""):
            continue
        yield shape
        queue += page.eval_on_selector_all(
            "main a[href^='/'], header a[href^='/']",
            "links => links.map(a => a.getAttribute('href'))",
        )
