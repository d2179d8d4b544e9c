"""API keys: created by org admins and shown once, hashed at rest, scoped, revocable, per org."""

import hashlib
import re

import pytest
import sqlalchemy as sa

from tests import factories

HTMX = {"HX-Request": "true"}
KEY = re.compile(r"csk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def api(app):
    return app.test_client()


def _bearer(key):
    return {"Authorization": f"Bearer {key}"}


def _create_on_settings_page(client, name="Servicio de órdenes", scopes=("credit:read",)):
    client.get("/settings/api-keys/")
    return client.post(
        "/settings/api-keys/", {"name": name, "scopes": list(scopes)}, follow_redirects=True
    )


def test_an_org_admin_creates_a_key_that_is_shown_once_and_stored_hashed(
    login_as, owner_engine, org_a, api
):
    admin = login_as("org_admin")
    page = _create_on_settings_page(admin)
    assert page.status_code == 200
    assert "Clave «Servicio de órdenes» creada" in page.text
    key = KEY.search(page.text).group(0)
    assert KEY.search(admin.get("/settings/api-keys/").text) is None  # a reload shows it no more
    with owner_engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM api_keys")).mappings().all()
    assert len(rows) == 1
    stored = rows[0]
    prefix, secret = key[4:16], key[17:]
    assert stored["prefix"] == prefix
    assert stored["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in stored.values())
    customer = factories.customer_create(org_a.organization_id)
    credit = api.get(f"/api/v1/customers/{customer.customer_id}/credit", headers=_bearer(key))
    assert credit.status_code == 200 and credit.json["status"] == "none"
    assert "Nunca" not in admin.get("/settings/api-keys/").text  # the last use is shown


def test_the_app_role_cannot_read_the_hashes(app, org_a):
    factories.api_key_create(org_a.organization_id)
    with factories.scoped(org_a.organization_id), pytest.raises(sa.exc.ProgrammingError):
        from portal.extensions import db

        db.session.execute(sa.text("SELECT secret_hash FROM api_keys")).all()


def test_a_key_form_without_scopes_is_refused_and_creates_nothing(login_as, org_a):
    admin = login_as("org_admin")
    admin.get("/settings/api-keys/")
    response = admin.post("/settings/api-keys/", {"name": "Sin permisos"}, headers=HTMX)
    assert response.status_code == 422
    assert "Elija al menos un permiso." in response.text
    assert "Aún no hay claves." in response.text


def test_only_org_admins_manage_keys(login_as):
    approver = login_as("credit_approver")
    approver.get("/")
    assert approver.get("/settings/api-keys/").status_code == 403
    assert (
        approver.post("/settings/api-keys/", {"name": "x", "scopes": ["credit:read"]}).status_code
        == 403
    )


def test_a_revoked_key_is_refused_at_once(login_as, org_a, api):
    key = factories.api_key_create(org_a.organization_id, scopes=("customers:read",))
    customer = factories.customer_create(org_a.organization_id, email="ana@correo.pa")
    url = "/api/v1/customers?email=ANA@correo.pa"
    assert api.get(url, headers=_bearer(key)).status_code == 200
    admin = login_as("org_admin")
    page = admin.get("/settings/api-keys/")
    key_id = re.search(r'id="api-key-([0-9a-f-]{36})"', page.text).group(1)
    revoked = admin.post(f"/settings/api-keys/{key_id}/revoke", headers=HTMX)
    assert revoked.status_code == 200 and "Clave «Checkout» revocada." in revoked.text
    refused = api.get(url, headers=_bearer(key))
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"
    assert refused.json["code"] == "unauthorized"
    assert customer.customer_id  # the customer is still there; only the key is gone


@pytest.mark.parametrize(
    "header",
    [None, "Bearer nope", "Basic abc", "Bearer csk_000000000000_" + "A" * 43],
)
def test_missing_malformed_or_unknown_keys_get_the_same_401(api, app, header):
    response = api.get(
        "/api/v1/customers?email=a@b.pa", headers={"Authorization": header} if header else {}
    )
    assert response.status_code == 401
    assert response.json["code"] == "unauthorized" and response.json["status"] == 401


def test_a_right_prefix_with_a_wrong_secret_is_refused(api, org_a):
    key = factories.api_key_create(org_a.organization_id)
    forged = key[:17] + ("B" if key[17] != "B" else "C") + key[18:]
    assert api.get("/api/v1/customers?email=a@b.pa", headers=_bearer(forged)).status_code == 401


def test_scopes_limit_what_a_key_may_do(api, org_a):
    key = factories.api_key_create(org_a.organization_id, scopes=("customers:read",))
    customer = factories.customer_create(org_a.organization_id)
    credit = api.get(f"/api/v1/customers/{customer.customer_id}/credit", headers=_bearer(key))
    assert credit.status_code == 403 and credit.json["code"] == "insufficient_scope"
    charge = api.post(
        "/api/v1/credit/charges",
        json={},
        headers=_bearer(key) | {"Idempotency-Key": "k"},
    )
    assert charge.status_code == 403 and "credit:charge" in charge.json["detail"]


def test_another_organizations_customer_is_not_found(api, org_a, org_b):
    key = factories.api_key_create(org_a.organization_id)
    theirs = factories.customer_create(org_b.organization_id, email="otra@correo.pa")
    factories.credit_account_create(org_b.organization_id, theirs.customer_id)
    credit = api.get(f"/api/v1/customers/{theirs.customer_id}/credit", headers=_bearer(key))
    assert credit.status_code == 404 and credit.json["code"] == "customer_not_found"
    found = api.get("/api/v1/customers?email=otra@correo.pa", headers=_bearer(key))
    assert found.status_code == 404
    charge = api.post(
        "/api/v1/credit/charges",
        json={
            "customer_id": str(theirs.customer_id),
            "order_id": "8f6e4b1c-0d55-4c47-9a57-3f9f1f0a2b10",
            "order_number": "PED-1",
            "amount": "10.00",
        },
        headers=_bearer(key) | {"Idempotency-Key": "other-org"},
    )
    assert charge.status_code == 404 and charge.json["code"] == "customer_not_found"


def test_a_staff_session_cookie_does_not_authorize_the_api(login_as, org_a):
    admin = login_as("org_admin")
    customer = factories.customer_create(org_a.organization_id)
    response = admin.http.get(f"/api/v1/customers/{customer.customer_id}/credit")
    assert response.status_code == 401 and response.json["code"] == "unauthorized"


def test_customers_are_found_by_email_phone_or_document_as_staff_type_them(api, org_a):
    key = factories.api_key_create(org_a.organization_id)
    customer = factories.customer_create(
        org_a.organization_id,
        email="maria@correo.pa",
        phone="+50761234567",
        document_number="8-123-456",
    )
    for query in ("email=%20Maria@Correo.PA", "phone=6123-4567", "document=8 123 456"):
        response = api.get(f"/api/v1/customers?{query}", headers=_bearer(key))
        assert response.status_code == 200, query
        assert response.json["customer_id"] == str(customer.customer_id)
    both = api.get("/api/v1/customers?email=a@b.pa&phone=61234567", headers=_bearer(key))
    assert both.status_code == 422 and both.json["code"] == "invalid_request"
    assert "exactamente uno" in str(both.json["errors"])


def test_each_key_is_rate_limited(api, app, org_a):
    key = factories.api_key_create(org_a.organization_id)
    other = factories.api_key_create(org_a.organization_id, name="Otra")
    app.config["API_RATE_LIMIT"] = "2 per minute"
    try:
        statuses = [
            api.get("/api/v1/customers?email=a@b.pa", headers=_bearer(key)).status_code
            for _ in range(3)
        ]
        assert statuses == [404, 404, 429]
        assert api.get("/api/v1/customers?email=a@b.pa", headers=_bearer(other)).status_code == 404
    finally:
        app.config["API_RATE_LIMIT"] = "1200 per minute"


def test_unknown_api_paths_answer_problems(api, app):
    response = api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "not_found" and response.json["detail"]


def test_the_settings_page_shows_the_keys_section(login_as, org_a):
    factories.api_key_create(org_a.organization_id, name="Caja central")
    admin = login_as("org_admin")
    page = admin.get("/settings/")
    assert page.status_code == 200
    assert 'id="api-keys"' in page.text and "Caja central" in page.text
    created = admin.post(
        "/settings/api-keys/", {"name": "Tienda web", "scopes": ["credit:read"]}, headers=HTMX
    )
    assert created.status_code == 200 and KEY.search(created.text)
    assert "Clave «Tienda web» creada" in created.text
