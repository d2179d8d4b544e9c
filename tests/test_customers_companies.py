"""Companies (b2b): legal name and contact person, no birth date or gender, RUC check digits."""

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.customers.forms import ruc_check_digits
from portal.customers.models import Customer
from portal.db import organization_scope
from portal.extensions import db
from tests import factories

HTMX = {"HX-Request": "true"}
COMPANY = {
    "customer_type": "b2b",
    "company_name": "  Distribuidora Cerro Azul, S.A. ",
    "first_name": "Marta",
    "last_name": "Quintero",
    "email": "compras@cerroazul.pa",
    "phone": "263-4455",
    "document_type": "ruc",
    "document_number": "155587169-2-2014 DV 9",
    "birth_date": "1980-01-01",
    "gender": "female",
    "preferred_language": "es",
}


@pytest.fixture
def staff(login_as):
    client = login_as("branch_staff")
    client.get("/customers/new")
    return client


def _customers(org) -> list:
    with factories._app.app_context(), organization_scope(org.organization_id):
        customers = list(db.session.scalars(sa.select(Customer)))
        for customer in customers:
            db.session.expunge(customer)
        return customers


def test_a_company_has_a_legal_name_and_a_contact_but_no_birth_date_or_gender(staff, org_a):
    response = staff.post("/customers/new", COMPANY)
    assert response.status_code == 302, response.text
    (company,) = _customers(org_a)
    assert company.company_name == "Distribuidora Cerro Azul, S.A."
    assert company.full_name == "Distribuidora Cerro Azul, S.A."
    assert company.contact_name == "Marta Quintero"
    assert company.birth_date is None and company.gender is None
    assert company.document_number == "155587169-2-2014DV9"
    page = staff.get(response.headers["Location"]).text
    assert "<h1>Distribuidora Cerro Azul, S.A.</h1>" in page
    assert "Persona de contacto" in page and "Marta Quintero" in page
    assert "Fecha de nacimiento" not in page


def test_a_company_without_legal_name_is_refused_and_nothing_is_written(staff, org_a):
    response = staff.post("/customers/new", COMPANY | {"company_name": "  "}, follow_redirects=True)
    assert response.status_code == 422
    assert "Ingrese la razón social de la empresa." in response.text
    assert _customers(org_a) == []


def test_a_person_keeps_no_legal_name(staff, org_a):
    person = COMPANY | {"customer_type": "b2c", "document_type": "", "document_number": ""}
    assert staff.post("/customers/new", person).status_code == 302
    (customer,) = _customers(org_a)
    assert customer.company_name is None and customer.full_name == "Marta Quintero"
    assert customer.gender == "female"


def test_the_database_refuses_a_company_without_legal_name(org_a):
    with pytest.raises(IntegrityError):
        factories.customer_create(org_a.organization_id, customer_type="b2b")


def test_editing_the_legal_name_is_audited_in_spanish(login_as, org_a):
    company = factories.customer_create(
        org_a.organization_id, customer_type="b2b", company_name="Ferretería El Tornillo"
    )
    client = login_as("branch_staff")
    form = client.get(f"/customers/{company.customer_id}/edit").text
    assert 'value="Ferretería El Tornillo"' in form
    data = {
        "customer_type": "b2b",
        "company_name": "Ferretería El Tornillo, S.A.",
        "first_name": company.first_name,
        "last_name": company.last_name,
        "email": company.email,
        "phone": company.phone,
        "document_type": "cedula",
        "document_number": company.document_number,
        "preferred_language": "es",
        "version_id": "1",
    }
    assert client.post(f"/customers/{company.customer_id}/edit", data).status_code == 302
    page = client.get(f"/customers/{company.customer_id}").text
    assert (
        "Razón social cambió de «Ferretería El Tornillo» a «Ferretería El Tornillo, S.A.»" in page
    )


def test_search_finds_a_company_by_its_legal_name_and_by_its_contact(login_as, org_a):
    company = factories.customer_create(
        org_a.organization_id,
        customer_type="b2b",
        company_name="Importadora Bocas del Toro",
        first_name="Rubén",
        last_name="Sanjur",
    )
    factories.customer_create(org_a.organization_id, first_name="Ana", last_name="Bocanegra")
    client = login_as("branch_staff")
    for query in ("importadora bocas", "Importadra", "toro", "ruben sanjur"):
        results = client.get(f"/customers/?q={query}", headers=HTMX).text
        assert str(company.customer_id) in results, query  # the name is highlighted
    only_companies = client.get("/customers/?customer_type=b2b").text
    assert "Importadora Bocas del Toro" in only_companies and "Bocanegra" not in only_companies


def test_renaming_a_company_moves_its_search_words(login_as, org_a):
    company = factories.customer_create(
        org_a.organization_id, customer_type="b2b", company_name="Panadería La Espiga"
    )
    with factories._app.app_context(), organization_scope(org_a.organization_id):
        db.session.execute(
            sa.update(Customer)
            .where(Customer.customer_id == company.customer_id)
            .values(company_name="Repostería Dulce Hogar")
        )
        db.session.commit()
    client = login_as("branch_staff")
    found = str(company.customer_id)
    assert found in client.get("/customers/?q=reposteria dulce", headers=HTMX).text
    assert found not in client.get("/customers/?q=espiga", headers=HTMX).text


def test_ruc_check_digits_of_a_legal_person():
    assert ruc_check_digits("155587169-2-2014") == "09"
    assert ruc_check_digits("2588017-1-831938") == "20"
    assert ruc_check_digits("253-92-57027") is None  # an old register: not verifiable here
    assert ruc_check_digits("8-NT-1-12345") is None  # a person's RUC: format only


@pytest.mark.parametrize(
    "number, accepted",
    [
        ("155587169-2-2014 DV 9", True),
        ("155587169-2-2014 D.V. 09", True),
        ("155587169-2-2014 DV 8", False),
        ("2588017-1-831938 DV 20", True),
        ("2588017-1-831938 DV 02", False),
        ("155587169-2-2014", True),  # no DV typed: nothing to check
        ("253-92-57027 DV 76", True),  # old register: format only
        ("8-123-4567 DV 12", True),  # a person's RUC: format only
        ("155587169-2-2014 DV 123", False),  # not a DV
    ],
)
def test_the_ruc_check_digit_is_verified_where_the_format_allows(staff, org_a, number, accepted):
    response = staff.post("/customers/new", COMPANY | {"document_number": number})
    assert (response.status_code == 302) is accepted, response.text
    if not accepted:
        assert "RUC" in staff.get(response.headers["Location"]).text  # the form, with its error
        assert _customers(org_a) == []
