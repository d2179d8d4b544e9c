"""Health check, security headers, error pages, logs and the worker's organization scope."""

import io
import json
import logging

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import SimpleWorker

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
    assert {"SECRET_KEY", "EVENTS_SECRET"} <= set(config.missing())


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
    from portal.seed import DEMO_ORG_ID, OTHER_ORG_ID

    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0 and "Demo data created." in first.output
    again = runner.invoke(args=["seed-demo", "--customers", "500"])
    assert "already present" in again.output and "Loaded 500 generated customers." in again.output
    with app.app_context():
        with organization_scope(DEMO_ORG_ID):
            assert customer_count() == 800
        with organization_scope(OTHER_ORG_ID):
            assert customer_count() == 60
