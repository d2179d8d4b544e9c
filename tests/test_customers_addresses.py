"""Addresses inline: add, edit, deactivate, one active default (also under concurrency)."""

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.audit import SYSTEM_ACTOR
from portal.customers.models import Address
from portal.customers.services import address_create, customer_get
from portal.db import organization_scope
from portal.extensions import db
from tests import factories

NEW = {
    "address_type": "both",
    "recipient_name": "Ana Núñez",
    "address_line1": "Vía España, Edificio Plaza 5",
    "address_line2": "Apto. 4B",
    "city": "Ciudad de Panamá",
    "state": "Panamá",
    "postal_code": "0816",
    "country": "PA",
    "phone": "6123-4567",
    "is_default": "y",
}
HTMX = {"HX-Request": "true"}


def _addresses(app, org, customer_id) -> list[Address]:
    with app.app_context(), organization_scope(org.organization_id):
        return list(
            db.session.scalars(
                sa.select(Address)
                .where(Address.customer_id == customer_id)
                .order_by(Address.created_at)
            )
        )


@pytest.fixture
def customer(org_a):
    return factories.customer_create(org_a.organization_id)


@pytest.fixture
def staff(login_as, customer):
    client = login_as("branch_staff")
    client.get(f"/customers/{customer.customer_id}")
    return client


def test_add_address_inline_returns_the_refreshed_list(app, staff, org_a, customer):
    form = staff.get(f"/customers/{customer.customer_id}/addresses/new", headers=HTMX)
    assert (
        form.status_code == 200 and "<html" not in form.text and 'name="address_line1"' in form.text
    )
    response = staff.post(f"/customers/{customer.customer_id}/addresses/new", NEW, headers=HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#addresses"
    assert "Vía España" in response.text and "Predeterminada" in response.text
    (address,) = _addresses(app, org_a, customer.customer_id)
    assert address.phone == "+50761234567" and address.is_default and address.country == "PA"
    assert (
        factories.audit_entries(org_a.organization_id, address.address_id)[0].action
        == "address.created"
    )


def test_without_javascript_the_form_is_a_page_and_saving_redirects(staff, customer):
    page = staff.get(f"/customers/{customer.customer_id}/addresses/new")
    assert "<html" in page.text
    response = staff.post(f"/customers/{customer.customer_id}/addresses/new", NEW)
    assert response.status_code == 302 and response.headers["Location"].endswith("#addresses")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("address_line1", "", "Ingrese dirección."),
        ("city", "   ", "Ingrese ciudad."),
        ("city", "x" * 101, "Máximo 100"),
        ("country", "XX", "Opción inválida"),
        ("country", "Panamá", "Opción inválida"),
        ("address_type", "home", "Opción inválida"),
        ("phone", "12", "teléfono válido"),
        ("postal_code", "1" * 21, "Máximo 20"),
        ("address_line2", "línea\x1bcon escape", "caracteres no permitidos"),
    ],
)
def test_invalid_address_is_refused_in_place_and_writes_nothing(
    app, staff, org_a, customer, field, value, message
):
    response = staff.post(
        f"/customers/{customer.customer_id}/addresses/new", NEW | {field: value}, headers=HTMX
    )
    assert response.status_code == 422 and message in response.text
    assert "HX-Retarget" not in response.headers
    assert _addresses(app, org_a, customer.customer_id) == []


def test_edit_address_inline_and_audit_before_after(app, staff, org_a, customer):
    address = factories.address_create(org_a.organization_id, customer.customer_id, city="Colón")
    url = f"/customers/{customer.customer_id}/addresses/{address.address_id}/edit"
    assert 'value="Colón"' in staff.get(url, headers=HTMX).text
    response = staff.post(url, NEW | {"city": "David", "is_default": ""}, headers=HTMX)
    assert response.status_code == 200 and "David" in response.text
    entry = factories.audit_entries(org_a.organization_id, address.address_id)[-1]
    assert entry.action == "address.updated"
    assert entry.before["city"] == "Colón" and entry.after["city"] == "David"


def test_setting_a_new_default_unsets_the_previous_one(app, staff, org_a, customer):
    first = factories.address_create(org_a.organization_id, customer.customer_id, is_default=True)
    second = factories.address_create(org_a.organization_id, customer.customer_id)
    url = f"/customers/{customer.customer_id}/addresses/{second.address_id}/edit"
    assert staff.post(url, NEW, headers=HTMX).status_code == 200
    defaults = {a.address_id for a in _addresses(app, org_a, customer.customer_id) if a.is_default}
    assert defaults == {second.address_id} and first.address_id not in defaults


def test_deactivate_address_inline(app, staff, org_a, customer):
    address = factories.address_create(org_a.organization_id, customer.customer_id, is_default=True)
    response = staff.post(
        f"/customers/{customer.customer_id}/addresses/{address.address_id}/deactivate", headers=HTMX
    )
    assert response.status_code == 200 and "Inactiva" in response.text
    (stored,) = _addresses(app, org_a, customer.customer_id)
    assert not stored.is_active and not stored.is_default
    assert (
        factories.audit_entries(org_a.organization_id, address.address_id)[-1].action
        == "address.deactivated"
    )


def test_database_refuses_two_active_defaults(app, org_a, customer):
    factories.address_create(org_a.organization_id, customer.customer_id, is_default=True)
    with pytest.raises(IntegrityError):
        factories.address_create(org_a.organization_id, customer.customer_id, is_default=True)
    # An inactive former default does not count.
    factories.address_create(
        org_a.organization_id, customer.customer_id, is_default=True, is_active=False
    )


def test_two_concurrent_new_defaults_leave_exactly_one(app, org_a, customer):
    barrier = threading.Barrier(2)
    errors = []

    def add_default(city: str):
        try:
            with app.app_context(), organization_scope(org_a.organization_id):
                target = customer_get(customer.customer_id)
                barrier.wait(timeout=10)
                address_create(
                    customer_id=target.customer_id,
                    actor=SYSTEM_ACTOR,
                    data={
                        "address_line1": "Calle 1",
                        "city": city,
                        "country": "PA",
                        "is_default": True,
                    },
                )
                db.session.commit()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=add_default, args=(city,)) for city in ("Colón", "David")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    addresses = _addresses(app, org_a, customer.customer_id)
    assert len(addresses) == 2
    assert sum(address.is_default for address in addresses) == 1


def test_another_organizations_addresses_are_404_and_untouched(app, login_as, org_a, org_b):
    theirs = factories.customer_create(org_b.organization_id)
    address = factories.address_create(org_b.organization_id, theirs.customer_id, city="Ajena")
    mine = factories.customer_create(org_a.organization_id)
    client = login_as("branch_staff")
    client.get(f"/customers/{mine.customer_id}")
    for url in (
        f"/customers/{theirs.customer_id}/addresses/{address.address_id}/edit",
        f"/customers/{mine.customer_id}/addresses/{address.address_id}/edit",  # forged pairing
    ):
        assert client.get(url).status_code == 404
        assert client.post(url, NEW).status_code == 404
    assert (
        client.post(
            f"/customers/{mine.customer_id}/addresses/{address.address_id}/deactivate"
        ).status_code
        == 404
    )
    assert client.post(f"/customers/{theirs.customer_id}/addresses/new", NEW).status_code == 404
    (stored,) = _addresses(app, org_b, theirs.customer_id)
    assert stored.city == "Ajena" and stored.is_active


def test_viewers_cannot_change_addresses(login_as, org_a, customer):
    address = factories.address_create(org_a.organization_id, customer.customer_id)
    client = login_as("credit_approver")
    page = client.get(f"/customers/{customer.customer_id}").text
    assert "Agregar dirección" not in page and "Desactivar" not in page
    assert (
        client.post(
            f"/customers/{customer.customer_id}/addresses/{address.address_id}/deactivate"
        ).status_code
        == 403
    )
