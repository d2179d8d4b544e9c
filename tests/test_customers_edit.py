"""Registering and editing customers: normalisation, validation, clashes, duplicates, locking."""

import pytest

from tests import factories

VALID = {
    "customer_type": "b2c",
    "first_name": "  Ana  ",
    "last_name": "Núñez Araúz",
    "email": "  Ana.Nunez@Correo.PA ",
    "phone": "6123-4567",
    "document_type": "cedula",
    "document_number": " 8-765-4321 ",
    "birth_date": "1990-05-17",
    "gender": "female",
    "preferred_language": "es",
    "marketing_consent": "y",
    "tags": "frecuente, mayorista, frecuente",
    "notes": "Prefiere contacto por WhatsApp.\nLlamar después de las 3.",
}


@pytest.fixture
def staff(login_as):
    client = login_as("branch_staff")
    client.get("/customers/new")
    return client


def _customers(org) -> list:
    import sqlalchemy as sa

    from portal.customers.models import Customer
    from portal.db import organization_scope
    from portal.extensions import db

    with factories._app.app_context(), organization_scope(org.organization_id):
        return list(db.session.scalars(sa.select(Customer)))


def test_create_normalises_every_field_and_audits(staff, org_a):
    response = staff.post("/customers/new", VALID)
    assert response.status_code == 302
    (customer,) = _customers(org_a)
    assert customer.first_name == "Ana" and customer.last_name == "Núñez Araúz"
    assert customer.email == "ana.nunez@correo.pa"
    assert customer.phone == "+50761234567"
    assert customer.document_number == "8-765-4321"
    assert customer.tags == ["frecuente", "mayorista"]
    assert customer.marketing_consent is True and customer.loyalty_tier == "bronze"
    (entry,) = factories.audit_entries(org_a.organization_id, customer.customer_id)
    assert entry.action == "customer.created" and entry.after["email"] == "ana.nunez@correo.pa"
    assert entry.actor_id == org_a.users["branch_staff"].staff_user_id
    page = staff.get(response.headers["Location"]).text
    assert "Ana Núñez Araúz" in page and "+507 6123-4567" in page


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("first_name", "", "Ingrese nombre."),
        ("first_name", "   ", "Ingrese nombre."),
        ("last_name", "x" * 101, "Máximo 100 caracteres."),
        ("first_name", "Ana\x07", "caracteres no permitidos"),
        ("email", "no-es-un-correo", "correo electrónico válido"),
        ("email", "a" * 250 + "@correo.pa", "Máximo 255"),
        ("phone", "123", "teléfono válido"),
        ("phone", "6123-4567-8888-9999", "teléfono válido"),
        ("phone", "' OR 1=1 --", "teléfono válido"),
        ("document_number", "8123", "provincia-tomo-asiento"),
        ("document_number", "14-1-1", "provincia-tomo-asiento"),
        ("document_type", "", "tipo y el número"),
        ("document_type", "licencia", "Elija una opción"),
        ("birth_date", "2999-01-01", "futuro"),
        ("birth_date", "1850-01-01", "posterior a 1900"),
        ("birth_date", "31/02/2020", "No es una fecha válida"),
        ("customer_type", "b2x", "Opción inválida"),
        ("tags", ",".join(f"t{n}" for n in range(25)), "Hasta 20 etiquetas"),
        ("notes", "x" * 2001, "Máximo 2000"),
    ],
)
def test_invalid_input_is_a_field_error_and_writes_nothing(staff, org_a, field, value, message):
    response = staff.post("/customers/new", VALID | {field: value}, follow_redirects=True)
    assert response.status_code == 422
    assert message in response.text
    assert _customers(org_a) == []


@pytest.mark.parametrize(
    "document_type, number, stored",
    [
        ("cedula", "e-8-12345", "E-8-12345"),
        ("cedula", "PE-1-123", "PE-1-123"),
        ("cedula", "8AV-1-22", "8AV-1-22"),
        ("ruc", "155600-1-2024", "155600-1-2024"),
        ("passport", "pa 123 4567", "PA1234567"),
        ("other", "Licencia 99", "LICENCIA99"),
    ],
)
def test_document_rules_per_type(staff, org_a, document_type, number, stored):
    data = VALID | {
        "document_type": document_type,
        "document_number": number,
        "email": "",
        "phone": "",
    }
    assert staff.post("/customers/new", data).status_code == 302
    assert _customers(org_a)[0].document_number == stored


@pytest.mark.parametrize(
    "field, value",
    [
        ("email", "ANA.NUNEZ@correo.pa"),
        ("phone", "+507 6123 4567"),
        ("document_number", "8-765-4321"),
    ],
)
def test_unique_clash_is_a_field_error_linking_the_existing_customer(staff, org_a, field, value):
    existing = factories.customer_create(
        org_a.organization_id,
        first_name="Ana",
        last_name="Existente",
        email="ana.nunez@correo.pa",
        phone="+50761234567",
        document_number="8-765-4321",
    )
    other = {"email": "otra@correo.pa", "phone": "6999-0000", "document_number": "8-1-1"}
    response = staff.post("/customers/new", VALID | other | {field: value}, follow_redirects=True)
    assert response.status_code == 422
    assert "Ya existe un cliente con ese" in response.text
    assert f'/customers/{existing.customer_id}"' in response.text
    assert len(_customers(org_a)) == 1


def test_the_same_keys_in_another_organization_are_not_a_clash(staff, org_a, org_b):
    factories.customer_create(
        org_b.organization_id,
        email="ana.nunez@correo.pa",
        phone="+50761234567",
        document_number="8-765-4321",
    )
    assert staff.post("/customers/new", VALID).status_code == 302


def test_duplicate_panel_shows_same_keys_and_similar_names(staff, org_a, org_b):
    same_email = factories.customer_create(
        org_a.organization_id, first_name="Otra", last_name="Persona", email="ana.nunez@correo.pa"
    )
    similar = factories.customer_create(
        org_a.organization_id, first_name="Ana", last_name="Nuñes Arauz"
    )
    theirs = factories.customer_create(
        org_b.organization_id, first_name="Ana", last_name="Núñez Araúz"
    )
    page = staff.get(
        "/customers/duplicates",
        query_string={
            "first_name": "Ana",
            "last_name": "Núñez Araúz",
            "email": "ANA.NUNEZ@correo.pa",
        },
    ).text
    assert "Posibles duplicados" in page
    assert str(same_email.customer_id) in page and "mismo correo" in page
    assert str(similar.customer_id) in page and "nombre muy parecido" in page
    assert str(theirs.customer_id) not in page
    assert staff.get("/customers/duplicates", query_string={"first_name": "Zoe"}).text.strip() == ""


def test_stale_edit_is_refused_and_nothing_is_overwritten(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id, first_name="Original")
    first, second = login_as("branch_staff"), login_as("credit_staff")
    for client in (first, second):
        assert (
            'name="version_id" type="hidden" value="1"'
            in client.get(f"/customers/{customer.customer_id}/edit").text
        )
    form = VALID | {"document_number": "8-1-1", "email": "", "phone": "", "version_id": "1"}
    assert (
        first.post(
            f"/customers/{customer.customer_id}/edit", form | {"first_name": "Primera"}
        ).status_code
        == 302
    )
    response = second.post(
        f"/customers/{customer.customer_id}/edit",
        form | {"first_name": "Segunda"},
        follow_redirects=True,
    )
    assert response.status_code == 409
    assert "Otra persona guardó cambios" in response.text
    stored = factories.customer_row(org_a.organization_id, customer.customer_id)
    assert stored.first_name == "Primera" and stored.version_id == 2


def test_edit_audits_only_what_changed(login_as, org_a):
    customer = factories.customer_create(
        org_a.organization_id, first_name="Luis", email="luis@correo.pa"
    )
    client = login_as("branch_staff")
    client.get(f"/customers/{customer.customer_id}/edit")
    form = {
        "customer_type": "b2c",
        "first_name": "Luis",
        "last_name": customer.last_name,
        "email": "luis.nuevo@correo.pa",
        "phone": customer.phone,
        "document_type": "cedula",
        "document_number": customer.document_number,
        "preferred_language": "es",
        "version_id": "1",
    }
    assert client.post(f"/customers/{customer.customer_id}/edit", form).status_code == 302
    entry = factories.audit_entries(org_a.organization_id, customer.customer_id)[-1]
    assert entry.action == "customer.updated"
    assert entry.before == {"email": "luis@correo.pa"}
    assert entry.after == {"email": "luis.nuevo@correo.pa"}
    timeline = client.get(f"/customers/{customer.customer_id}").text
    assert "Datos actualizados" in timeline and "luis.nuevo@correo.pa" in timeline


def test_status_change_needs_a_reason_and_is_audited(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id)
    client = login_as("branch_staff")
    client.get(f"/customers/{customer.customer_id}")
    url = f"/customers/{customer.customer_id}/status"
    client.post(url, {"status": "blocked", "status_reason": "", "version_id": "1"})
    assert factories.customer_row(org_a.organization_id, customer.customer_id).status == "active"
    assert "Indique el motivo" in client.get(f"/customers/{customer.customer_id}").text
    response = client.post(
        url, {"status": "blocked", "status_reason": "Fraude con tarjeta", "version_id": "1"}
    )
    assert response.status_code == 303
    stored = factories.customer_row(org_a.organization_id, customer.customer_id)
    assert stored.status == "blocked" and stored.status_reason == "Fraude con tarjeta"
    entry = factories.audit_entries(org_a.organization_id, customer.customer_id)[-1]
    assert entry.action == "customer.status_changed"
    assert (
        entry.before["status"] == "active" and entry.after["status_reason"] == "Fraude con tarjeta"
    )
    page = client.get(f"/customers/{customer.customer_id}").text
    assert "Cliente bloqueado: Fraude con tarjeta" in page


def test_status_change_with_a_stale_version_or_bad_status_changes_nothing(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id)
    client = login_as("branch_staff")
    client.get(f"/customers/{customer.customer_id}")
    url = f"/customers/{customer.customer_id}/status"
    client.post(url, {"status": "inactive", "status_reason": "Mudanza", "version_id": "7"})
    client.post(url, {"status": "deleted", "status_reason": "Mudanza", "version_id": "1"})
    assert factories.customer_row(org_a.organization_id, customer.customer_id).status == "active"


def test_approvers_and_admins_read_customers_but_cannot_change_them(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id)
    for role in ("credit_approver", "org_admin"):
        client = login_as(role)
        assert client.get(f"/customers/{customer.customer_id}").status_code == 200
        assert client.get("/customers/new").status_code == 403
        assert client.get(f"/customers/{customer.customer_id}/edit").status_code == 403
        client.get(f"/customers/{customer.customer_id}")
        assert (
            client.post(
                f"/customers/{customer.customer_id}/status",
                {"status": "blocked", "status_reason": "x" * 5, "version_id": "1"},
            ).status_code
            == 403
        )
    assert factories.customer_row(org_a.organization_id, customer.customer_id).status == "active"


def test_another_organizations_customer_cannot_be_edited(login_as, org_a, org_b):
    theirs = factories.customer_create(org_b.organization_id, first_name="Ajeno")
    client = login_as("branch_staff")
    client.get("/customers/new")
    base = f"/customers/{theirs.customer_id}"
    assert client.get(f"{base}/edit").status_code == 404
    assert client.post(f"{base}/edit", VALID | {"version_id": "1"}).status_code == 404
    assert (
        client.post(
            f"{base}/status", {"status": "blocked", "status_reason": "xxx", "version_id": "1"}
        ).status_code
        == 404
    )
    stored = factories.customer_row(org_b.organization_id, theirs.customer_id)
    assert stored.first_name == "Ajeno" and stored.status == "active"


def test_forged_organization_field_is_ignored(staff, org_a, org_b):
    assert (
        staff.post(
            "/customers/new", VALID | {"organization_id": str(org_b.organization_id)}
        ).status_code
        == 302
    )
    assert len(_customers(org_a)) == 1
    assert _customers(org_b) == []


def test_double_submit_creates_one_customer(staff, org_a):
    assert staff.post("/customers/new", VALID).status_code == 302
    again = staff.post("/customers/new", VALID, follow_redirects=True)
    assert again.status_code == 422 and "Ya existe un cliente con ese" in again.text
    assert len(_customers(org_a)) == 1
