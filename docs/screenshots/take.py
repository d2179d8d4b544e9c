"""Screenshots of the demo for the README: each role's home, a customer page at 1366 and 390 px,
the collections dashboard.

    .venv/bin/python docs/screenshots/take.py     # starts its own demo under .data/screenshots

Starts `python -m portal.embedded serve` (demo data, as `make run` does) on a free port, drives
Debian's Chromium through Playwright and writes the PNG files beside this script.
"""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from portal.embedded import free_port
from portal.seed import DEMO_ORG_ID, DEMO_PASSWORD, DEMO_USERS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WIDE, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}


def _wait_until_up(url: str, seconds: int = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback server
                return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"the demo did not answer at {url}")


def _log_in(page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Correo electrónico").fill(email)
    page.get_by_label("Contraseña").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_url(lambda url: "/login" not in url)


def main() -> None:
    port = free_port()
    env = os.environ | {"PORTAL_DATA_DIR": str(ROOT / ".data" / "screenshots")}
    server = subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", "portal.embedded", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/healthz")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless=new", "--no-sandbox"]
            )
            for email, _, roles in DEMO_USERS[DEMO_ORG_ID]:
                context = browser.new_context(base_url=base, locale="es-PA", viewport=WIDE)
                page = context.new_page()
                _log_in(page, email)
                page.goto("/")
                page.screenshot(path=HERE / f"home-{roles[0]}.png", full_page=True)
                if roles == ["credit_staff"]:
                    page.goto("/credit/aging")
                    page.locator("#aging-table tbody a").first.click()
                    customer_url = page.url
                    page.screenshot(path=HERE / "customer-1366.png", full_page=True)
                    page.set_viewport_size(PHONE)
                    page.goto(customer_url)
                    page.screenshot(path=HERE / "customer-390.png", full_page=True)
                    page.set_viewport_size(WIDE)
                    page.goto("/collections/dashboard")
                    page.screenshot(path=HERE / "collections-dashboard.png", full_page=True)
                context.close()
            browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
