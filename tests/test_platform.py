"""Health check, security headers, error pages, logs and the worker's organization scope."""

import io
import json
import logging
import os
import secrets
import subprocess
import sys

import pytest
import sqlalchemy as sa
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import SimpleWorker

from portal import create_app
from portal.tasks import enqueue_scoped, queue
from tests import factories


def test_healthz_reports_database_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_healthz_reports_a_broken_redis(app, client, monkeypatch):
    monkeypatch.setitem(app.extensions, "portal_redis", Redis(port=1, retry=Retry(NoBackoff(), 0)))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"].startswith("error")
    assert response.json["checks"]["database"] == "ok"


def test_security_headers_and_csp_without_inline_script(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in response.text and " on" + "click=" not in response.text


def test_session_cookie_flags(app, login_as):
    client = login_as("branch_staff")
    cookie = client.http.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie.http_only and cookie.same_site == "Lax"


def test_production_config_has_secure_cookies_and_no_default_secrets(monkeypatch):
    from portal.config import Config

    for name in ("SECRET_KEY", "EVENTS_SECRET", "SESSION_COOKIE_SECURE"):
        monkeypatch.delenv(name, raising=False)
    config = Config()
    assert config.SESSION_COOKIE_SECURE is True
    # EVENTS_SECRET is optional in production: without it only organization keys sign events.
    assert "SECRET_KEY" in config.missing() and config.EVENTS_SECRET is None


def _production_config(services, **overrides):
    from portal.config import Config

    settings = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "EVENTS_SECRET": secrets.token_urlsafe(32),
        "SQLALCHEMY_DATABASE_URI": services.database_url,
        "DATABASE_OWNER_URL": services.database_owner_url,
        "REDIS_URL": services.redis_url,
        "SESSION_COOKIE_SECURE": True,
        "LOG_LEVEL": "WARNING",
    }
    return Config(**(settings | overrides))


@pytest.mark.parametrize(
    "settings, refusal",
    [
        ({"SECRET_KEY": "change-me-to-a-long-random-secret"}, "SECRET_KEY"),  # the old compose
        ({"SECRET_KEY": "dev-only-secret-key-not-for-production"}, "SECRET_KEY"),
        ({"SECRET_KEY": "test-secret-key"}, "SECRET_KEY"),
        ({"SECRET_KEY": "Xk9-q2Lr7vPz0aB4mN8sT1wY3c"}, "SECRET_KEY"),  # random, 26 bytes
        ({"SECRET_KEY": "ñ" * 15}, "SECRET_KEY"),  # 15 characters, 30 bytes
        ({"SECRET_KEY": "CHANGEME" + secrets.token_urlsafe(32)}, "SECRET_KEY"),
        ({"EVENTS_SECRET": "change-me-events-secret"}, "EVENTS_SECRET"),
        ({"EVENTS_SECRET": "x" * 31}, "EVENTS_SECRET"),
        ({"SESSION_COOKIE_SECURE": False}, "SESSION_COOKIE_SECURE"),
    ],
)
def test_production_refuses_to_start_with_weak_settings(app, services, settings, refusal):
    with pytest.raises(RuntimeError, match=f"Refusing to start in production: {refusal}"):
        create_app(_production_config(services, **settings))


def test_production_refusal_stops_the_real_entry_point(app, services):
    environment = (
        os.environ
        | services.environ()
        | {
            "PORTAL_ENV": "production",
            "SECRET_KEY": "change-me-to-a-long-random-secret",
            "EVENTS_SECRET": secrets.token_urlsafe(32),
        }
    )
    environment.pop("SESSION_COOKIE_SECURE", None)
    result = subprocess.run(
        [sys.executable, "-c", "import portal.wsgi"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Refusing to start in production: SECRET_KEY" in result.stderr


@pytest.fixture
def production_app(app, services):
    """The portal as production runs it (strong secrets), on the test database."""
    return create_app(_production_config(services))


def test_production_sets_secure_cookies_and_hsts(production_app):
    response = production_app.test_client().get("/login")
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("portal_session=") and "; Secure" in cookie and "HttpOnly" in cookie
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_development_does_not_send_hsts(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_production_never_seeds_demo_data(production_app, owner_engine):
    result = production_app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 1 and "never loaded with PORTAL_ENV=production" in result.output
    with owner_engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM organizations")) == 0
        assert connection.scalar(sa.text("SELECT count(*) FROM staff_users")) == 0


def test_unknown_page_is_a_spanish_404_without_trace(login_as):
    response = login_as("branch_staff").get("/no-existe")
    assert response.status_code == 404
    assert "No encontramos lo que busca." in response.text


def test_unexpected_error_is_a_500_page_without_stack_trace(app, login_as, monkeypatch):
    import portal.customers.views as views

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views, "customer_search", explode)
    response = login_as("branch_staff").get("/customers/")
    assert response.status_code == 500
    assert "secret internals" not in response.text and "Traceback" not in response.text


def test_request_logs_are_json_with_a_request_id(app, client, monkeypatch):
    configured = logging.getLogger().handlers[0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(configured.formatter)
    for log_filter in configured.filters:
        handler.addFilter(log_filter)
    monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
    app.logger.setLevel(logging.INFO)
    try:
        response = client.get("/healthz", headers={"X-Request-ID": "abc12345-test"})
    finally:
        app.logger.setLevel(logging.NOTSET)
    assert response.headers["X-Request-ID"] == "abc12345-test"
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["message"] == "request" and record["status"] == 200
    assert record["request_id"] == "abc12345-test" and record["path"] == "/healthz"


def test_worker_runs_each_job_inside_its_organization(app, org_a, org_b):
    for _ in range(3):
        factories.customer_create(org_a.organization_id)
    factories.customer_create(org_b.organization_id)
    with app.app_context():
        job_a = enqueue_scoped(
            "portal.customers.services:customer_count", organization_id=org_a.organization_id
        )
        job_b = enqueue_scoped(
            "portal.customers.services:customer_count", organization_id=org_b.organization_id
        )
        portal_queue = queue()
        SimpleWorker([portal_queue], connection=portal_queue.connection).work(
            burst=True, logging_level=logging.WARNING
        )
        assert job_a.latest_result().return_value == 3
        assert job_b.latest_result().return_value == 1


@pytest.mark.parametrize("path", ["/customers/", "/users/"])
def test_pages_work_without_javascript_for_reading(login_as, path):
    response = login_as("org_admin").get(path)
    assert response.status_code == 200 and "<table" in response.text


def test_seed_demo_is_idempotent_and_bulk_loads_more_customers(app):
    from portal.customers.services import customer_count
    from portal.db import organization_scope
    from portal.seed import DEMO_CUSTOMERS, DEMO_ORG_ID, OTHER_ORG_ID

    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0 and "Demo data created." in first.output
    again = runner.invoke(args=["seed-demo", "--customers", "500"])
    assert "already present" in again.output and "Loaded 500 generated customers." in again.output
    with app.app_context():
        with organization_scope(DEMO_ORG_ID):
            assert customer_count() == DEMO_CUSTOMERS + 500
        with organization_scope(OTHER_ORG_ID):
            assert customer_count() == DEMO_CUSTOMERS


def test_compose_takes_secrets_from_env_and_seeds_only_in_the_demo_profile():
    import re
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parent.parent
    text = (root / "docker-compose.yml").read_text()
    services = yaml.safe_load(text)["services"]
    example = dict(
        line.split("=", 1)
        for line in (root / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(re.findall(r"\$\{(\w+)", text)) <= set(example)  # every variable is documented
    for secret in ("SECRET_KEY", "POSTGRES_PASSWORD", "OWNER_DB_PASSWORD", "APP_DB_PASSWORD"):
        assert example[secret] == "" and "${" + secret + ":?" in text  # required, no default
    assert example["EVENTS_SECRET"] == ""
    for name, service in services.items():
        environment = service.get("environment", {})
        command = " ".join(service.get("command", []))
        assert "SESSION_COOKIE_SECURE" not in environment
        if name == "demo-seed":
            assert service["profiles"] == ["demo"] and "seed-demo" in command
        else:
            assert "profiles" not in service and "seed-demo" not in command
            assert environment.get("PORTAL_ENV", "production") == "production"
    assert services["web"]["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?")
    init = (root / "docker" / "initdb.sh").read_text()
    assert "PASSWORD :'owner_password'" in init and "PASSWORD :'app_password'" in init
    assert ".env" in (root / ".dockerignore").read_text().split()
