"""`make run`'s server from nothing: embedded PostgreSQL and Redis, demo data, clean stop."""

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from portal.embedded import free_port
from portal.seed import DEMO_PASSWORD

PROJECT_ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _tail(process: subprocess.Popen) -> str:
    return process.log_path.read_text()[-3000:]


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the portal exited during start-up:\n{_tail(process)}"
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback only
                return
        except OSError:  # refused, reset or timed out while gunicorn boots (URLError too)
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def _start(data_dir: Path, port: int) -> subprocess.Popen:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "PORTAL_ENV", "PORT"}
    } | {"PORTAL_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "portal.embedded", "serve", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(90)


def _login_and_count_customers(base: str, email: str) -> int:
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    login_page = opener.open(f"{base}/login").read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    body = urllib.parse.urlencode(
        {"email": email, "password": DEMO_PASSWORD, "csrf_token": token}
    ).encode()
    home = opener.open(f"{base}/login", data=body).read().decode()
    assert "Cerrar sesión" in home
    customers_page = opener.open(f"{base}/customers/").read().decode()
    return customers_page.count('class="customer-row')


def test_serve_from_nothing_then_restart_keeps_the_data(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    process = _start(data_dir, port)
    try:
        _wait_for(f"{base}/login", process)
        with urllib.request.urlopen(f"{base}/healthz") as response:  # noqa: S310
            assert b'"database":"ok"' in response.read().replace(b" ", b"")
        first_count = _login_and_count_customers(base, "admin@demo.pa")
        assert first_count > 10
    finally:
        assert _stop(process) == 0, _tail(process)
    assert not (data_dir / "pg" / "postmaster.pid").exists(), "PostgreSQL left running"

    process = _start(data_dir, port)
    try:
        _wait_for(f"{base}/login", process)
        assert _login_and_count_customers(base, "sucursal@demo.pa") == first_count
    finally:
        assert _stop(process) == 0, _tail(process)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base}/login", timeout=2)  # noqa: S310
