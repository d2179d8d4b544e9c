"""Test harness: real PostgreSQL and Redis (embedded unless DATABASE_URL/REDIS_URL are set).

The schema is rebuilt by the migrations once per session; after every test all tables are
truncated (as the owner) and the test Redis database is flushed, so each test starts empty.
Tenancy-sensitive code runs as the app role, exactly as in production.
"""

import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from redis import Redis

from portal import create_app
from portal.config import TestingConfig
from portal.embedded import free_port, services_start
from portal.extensions import db
from portal.mail.sink import sink_start
from tests import factories

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


def _owner_url(urls) -> str:
    return urls.database_owner_url


@pytest.fixture(scope="session")
def services():
    """Database and Redis URLs for the test run; refuses to wipe a non-test database."""
    urls = services_start(PROJECT_ROOT / ".data" / "test", database="portal_test")
    database_name = sa.make_url(urls.database_url).database or ""
    if "test" not in database_name:
        pytest.exit(
            f"Refusing to run tests against database {database_name!r} (no 'test' in its name)"
        )
    return urls


@pytest.fixture(scope="session")
def owner_engine(services):
    """An engine connected as the owner role (migrations, truncation, inspection)."""
    engine = sa.create_engine(_owner_url(services), poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app(services, owner_engine):
    """The portal, migrated from an empty schema, connected as the app role."""
    config = TestingConfig(
        SQLALCHEMY_DATABASE_URI=services.database_url,
        DATABASE_OWNER_URL=services.database_owner_url,
        REDIS_URL=services.redis_url,
        LOG_LEVEL="WARNING",
    )
    application = create_app(config)
    with application.app_context():
        # Every revision must also go back down cleanly: up, all the way down, up again.
        upgrade()
        downgrade(revision="base")
        upgrade()
    factories.bind(application)
    return application


@pytest.fixture(scope="session")
def tenant_tables(owner_engine, app) -> list[str]:
    """Every table of the schema except Alembic's bookkeeping."""
    with owner_engine.connect() as connection:
        return list(
            connection.scalars(
                sa.text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version' ORDER BY tablename"
                )
            )
        )


@pytest.fixture(autouse=True)
def _clean_state(request, services):
    """Leave no rows and no Redis keys behind for the next test."""
    if "app" not in request.fixturenames:
        yield
        return
    tables = request.getfixturevalue("tenant_tables")
    owner = request.getfixturevalue("owner_engine")
    yield
    with owner.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {', '.join(tables)} CASCADE")
    Redis.from_url(services.redis_url).flushdb()


@pytest.fixture
def app_ctx(app):
    """An application context whose session is removed afterwards."""
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def org_a(app):
    """Organization A with one user of every role."""
    return factories.organization_with_staff("Tienda A")


@pytest.fixture
def org_b(app):
    """Organization B with one user of every role."""
    return factories.organization_with_staff("Tienda B")


def csrf_token_from(html: str) -> str:
    """The CSRF token embedded in a rendered page."""
    match = CSRF_INPUT.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


class PortalClient:
    """A test client that logs in through the real form and sends the CSRF token like a browser."""

    def __init__(self, flask_client):
        self.http = flask_client
        self.csrf_token = None

    def get(self, *args, **kwargs):
        response = self.http.get(*args, **kwargs)
        if response.mimetype == "text/html" and (token := CSRF_INPUT.search(response.text)):
            self.csrf_token = token.group(1) or token.group(2)
        return response

    def post(self, url, data=None, **kwargs):
        """POST with the CSRF token of the last page seen (unless data already carries one)."""
        data = dict(data or {})
        if self.csrf_token and "csrf_token" not in data:
            data["csrf_token"] = self.csrf_token
        return self.http.post(url, data=data, **kwargs)

    def login(self, email: str, password: str = factories.TEST_PASSWORD):
        self.get("/login")
        return self.post("/login", {"email": email, "password": password})


@pytest.fixture
def client(app):
    """An anonymous browser-like client."""
    return PortalClient(app.test_client())


@pytest.fixture
def login_as(app, org_a):
    """Factory: a client logged in as org A's user of the given role."""

    def _login(role: str, organization=None) -> PortalClient:
        organization = organization or org_a
        portal_client = PortalClient(app.test_client())
        response = portal_client.login(organization.users[role].email)
        assert response.status_code == 302, response.text
        return portal_client

    return _login


def pytest_collection_modifyitems(config, items):
    """Browser tests need Chromium; say so clearly instead of failing obscurely."""
    if os.path.exists("/usr/bin/chromium"):
        return
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="/usr/bin/chromium is not installed"))


@pytest.fixture
def smtp_url(app):
    """Point the app's SMTP_URL at a fresh port (no server yet); restored afterwards."""
    before = dict(app.config)
    url = f"smtp://127.0.0.1:{free_port()}"
    app.config.update(SMTP_URL=url, EMAIL_LEASE_SECONDS=300)
    yield url
    app.config.clear()
    app.config.update(before)


@pytest.fixture
def sink(smtp_url, tmp_path):
    """The development sink (aiosmtpd writing a Maildir) listening on SMTP_URL."""
    directory = tmp_path / "mail"
    server = sink_start(directory, int(smtp_url.rsplit(":", 1)[1]))
    yield directory
    server.stop()


@pytest.fixture
def worker_process(app, services):
    """A real `python worker.py` process on the test database and Redis; stopped afterwards."""
    import signal
    import subprocess
    import sys

    environment = (
        os.environ | services.environ() | {"PORTAL_ENV": "testing", "LOG_LEVEL": "WARNING"}
    )
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "worker.py")], env=environment, cwd=PROJECT_ROOT
    )
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
