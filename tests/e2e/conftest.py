"""Browser tests: the real portal on 127.0.0.1, driven by Debian's Chromium via Playwright."""

import re
import threading

import pytest
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from portal.embedded import free_port

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
