"""Errors are answered in Spanish, never with a 500 the user caused or a broken error page."""

import subprocess
import sys

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.config import Config
from portal.customers import views as customer_views
from portal.customers.models import Customer
from portal.extensions import db
from tests import factories
from tests.conftest import PROJECT_ROOT, PortalClient


@pytest.mark.parametrize(
    "extra",
    [
        "endpoint=x",
        "_method=POST",
        "_external=1&_scheme=javascript",
        "_anchor=x",
        "values=1",
        "after=",
    ],
)
def test_search_ignores_query_arguments_it_does_not_know(login_as, org_a, extra):
    factories.customer_create(org_a.organization_id, first_name="Ana")
    client = login_as("branch_staff")
    page = client.get(f"/customers/?q=a&{extra}")
    assert page.status_code == 200
    assert "endpoint=x" not in page.text and "_method" not in page.text
    partial = client.get(f"/customers/?q=a&{extra}", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert partial.headers["HX-Push-Url"] == "/customers/?q=a"


@pytest.mark.parametrize(
    ("document_type", "document_number"), [("other", ""), ("cedula", " "), ("", "X-123")]
)
def test_document_type_and_number_come_as_a_pair(
    app, login_as, org_a, document_type, document_number
):
    client = login_as("branch_staff")
    client.get("/customers/new")
    response = client.post(
        "/customers/new",
        {
            "customer_type": "b2c",
            "first_name": "Ana",
            "last_name": "Díaz",
            "preferred_language": "es",
            "document_type": document_type,
            "document_number": document_number,
        },
        follow_redirects=True,
    )
    assert response.status_code == 422
    assert "Indique el tipo y el número de documento, o ninguno." in response.text
    with factories.scoped(org_a.organization_id):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


def test_error_page_renders_after_a_failed_transaction(app, org_a, monkeypatch):
    """A database error leaves the session broken; the 500 page still renders (it queries too)."""
    approver = factories.staff_create(org_a.organization_id, ["credit_staff", "credit_approver"])

    def broken_search(*args, **kwargs):
        db.session.add(Customer(first_name="Ana", last_name="Díaz", document_type="other"))
        db.session.flush()  # CheckViolation: the transaction is now unusable

    monkeypatch.setattr(customer_views, "customer_search", broken_search)
    client = PortalClient(app.test_client())
    assert client.login(approver.email).status_code == 302
    response = client.get("/customers/?q=ana")
    assert response.status_code == 500
    assert "Ocurrió un error inesperado" in response.text
    assert 'id="queue-count"' in response.text  # the approver's layout, which queries, rendered


def test_production_engine_hides_statement_parameters(app, services):
    config = Config(
        SECRET_KEY="x" * 48,
        EVENTS_SECRET="y" * 48,
        SQLALCHEMY_DATABASE_URI=services.database_url,
        DATABASE_OWNER_URL=services.database_owner_url,
        REDIS_URL=services.redis_url,
        LOG_LEVEL="WARNING",
    )
    production = create_app(config)
    with production.app_context():
        with pytest.raises(sa.exc.DBAPIError) as raised:
            db.session.execute(sa.text("SELECT 1 / :zero"), {"zero": 0, "secret": "nota privada"})
        db.session.remove()
        db.engine.dispose()
    assert "nota privada" not in str(raised.value)
    assert "hide_parameters=True" in str(raised.value)


def test_not_e2e_selects_every_test_but_the_browser_ones():
    """`pytest -m "not e2e"` keeps the suite and drops only the tests that drive Chromium."""
    collected = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not e2e",
            "tests/e2e",
            "tests/test_errors.py",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    selected = [line for line in collected.splitlines() if "::" in line]
    assert any("tests/test_errors.py::" in line for line in selected), collected
    assert any("test_events_cli.py::" in line for line in selected)  # no browser needed
    assert not any("test_login_e2e.py::" in line for line in selected)
    assert not any("test_customers_e2e.py::" in line for line in selected)


def test_customer_edit_without_a_version_field_is_no_500(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id)
    client = login_as("branch_staff")
    client.get(f"/customers/{customer.customer_id}/edit")
    response = client.post(f"/customers/{customer.customer_id}/edit", {"first_name": "Ana"})
    assert response.status_code == 302  # fields left out keep their values (WTForms with obj)
    assert factories.customer_row(org_a.organization_id, customer.customer_id).first_name == "Ana"
