"""The customer's activity timeline: notes, field changes in Spanish, credit, tiers, segments."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from psycopg import errors as pg_errors
from sqlalchemy.exc import ProgrammingError

from portal.credit.services import credit_approve, credit_request, credit_suspend
from portal.customers.models import TIMELINE_KINDS
from portal.extensions import db
from portal.segments.services import segments_recompute
from tests import factories

HTMX = {"HX-Request": "true"}


@pytest.fixture
def customer(org_a):
    return factories.customer_create(org_a.organization_id, first_name="Irene")


def _page(client, customer) -> str:
    return client.get(f"/customers/{customer.customer_id}").text


def _note(client, customer, body: str, **kwargs):
    return client.post(f"/customers/{customer.customer_id}/notes", {"body": body}, **kwargs)


def test_a_note_added_without_javascript_is_shown_and_audited(login_as, org_a, customer):
    client = login_as("branch_staff")
    _page(client, customer)
    response = _note(client, customer, "Pidió que la llamen después de las 5 pm.")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/customers/{customer.customer_id}#timeline-card")
    page = _page(client, customer)
    assert "Pidió que la llamen después de las 5 pm." in page
    assert f"Nota agregada a {customer.full_name}." in page
    with factories.scoped(org_a.organization_id):
        note_id = db.session.scalar(sa.text("SELECT note_id FROM customer_notes"))
    entry = factories.audit_entries(org_a.organization_id, note_id)[-1]
    assert entry.action == "customer.note_added"
    assert entry.actor_id == org_a.users["branch_staff"].staff_user_id


def test_a_note_added_with_htmx_refreshes_the_panel(login_as, customer):
    client = login_as("credit_approver")
    _page(client, customer)
    response = _note(client, customer, "Cliente de confianza.", headers=HTMX)
    assert response.status_code == 200
    assert 'id="timeline-card"' in response.text and "<html" not in response.text
    assert "Cliente de confianza." in response.text and "Nota agregada a" in response.text


@pytest.mark.parametrize("body", ["", "   ", "x" * 2001, "\u0007 campana"])
def test_a_bad_note_is_a_422_that_writes_nothing(login_as, org_a, customer, body):
    client = login_as("branch_staff")
    _page(client, customer)
    response = _note(client, customer, body, headers=HTMX)
    assert response.status_code == 422
    assert 'id="timeline-card"' in response.text and "field-error" in response.text
    plain = _note(client, customer, body)
    assert plain.status_code == 303
    with factories.scoped(org_a.organization_id):
        assert db.session.scalar(sa.text("SELECT count(*) FROM customer_notes")) == 0


def test_only_customer_facing_roles_add_notes(login_as, customer):
    admin = login_as("org_admin")
    page = _page(admin, customer)
    assert 'id="note-form"' not in page and 'id="timeline-card"' in page
    assert _note(admin, customer, "Hola").status_code == 403


def test_notes_are_append_only_for_the_app_role(app, login_as, org_a, customer):
    client = login_as("branch_staff")
    _page(client, customer)
    _note(client, customer, "Primera nota")
    for statement in ("UPDATE customer_notes SET body = 'x'", "DELETE FROM customer_notes"):
        with (
            app.app_context(),
            pytest.raises(ProgrammingError) as raised,
            db.engine.begin() as connection,
        ):
            connection.exec_driver_sql(
                "SELECT set_config('app.current_organization_id', %s, true)",
                (str(org_a.organization_id),),
            )
            connection.execute(sa.text(statement))
        assert isinstance(raised.value.orig, pg_errors.InsufficientPrivilege)
    assert "Primera nota" in _page(client, customer)


def test_another_organization_can_neither_read_nor_add_notes(login_as, org_a, org_b, customer):
    client = login_as("branch_staff")
    _page(client, customer)
    _note(client, customer, "Nota privada de A")
    other = login_as("branch_staff", org_b)
    other.get("/customers/")
    assert other.get(f"/customers/{customer.customer_id}").status_code == 404
    assert other.get(f"/customers/{customer.customer_id}/timeline").status_code == 404
    assert _note(other, customer, "Intruso").status_code == 404
    with factories.scoped(org_b.organization_id):
        assert db.session.scalar(sa.text("SELECT count(*) FROM customer_notes")) == 0
    with factories.scoped(org_a.organization_id):
        assert db.session.scalar(sa.text("SELECT count(*) FROM customer_notes")) == 1


def test_field_changes_read_in_spanish(login_as, org_a, customer):
    address = factories.address_create(org_a.organization_id, customer.customer_id)
    client = login_as("branch_staff")
    client.get(f"/customers/{customer.customer_id}/addresses/{address.address_id}/edit")
    form = {
        "address_type": "shipping",
        "address_line1": address.address_line1,
        "address_line2": "Piso 3",
        "city": "Panamá",
        "country": "PA",
        "is_default": "y",
    }
    response = client.post(
        f"/customers/{customer.customer_id}/addresses/{address.address_id}/edit", form
    )
    assert response.status_code == 302
    _page(client, customer)
    client.post(
        f"/customers/{customer.customer_id}/status",
        {"status": "inactive", "status_reason": "Se mudó", "version_id": "1"},
    )
    page = _page(client, customer)
    assert "Dirección de envío: línea 2 cambió de «vacío» a «Piso 3»" in page
    assert "Dirección de envío: predeterminada cambió de «no» a «sí»" in page
    assert "Estado cambió de «Activo» a «Inactivo»" in page
    assert "Motivo del estado cambió de «vacío» a «Se mudó»" in page
    timeline = page.split('id="timeline-card"')[1].split("</article>")[0]
    for raw in ("address_line2", "status_reason", "True", "is_default"):
        assert raw not in timeline


def test_credit_tier_and_segment_changes_are_in_the_feed(org_a, login_as, customer):
    staff, approver = org_a.users["branch_staff"], org_a.users["credit_approver"]
    with factories.scoped(org_a.organization_id):
        request, _ = credit_request(
            customer_id=customer.customer_id,
            limit=Decimal("500.00"),
            term_days=30,
            notes="Compra mensual de mercancía",
            requester=staff,
        )
        account_id, request_id = request.credit_account_id, request.credit_request_id
    with factories.scoped(org_a.organization_id):
        credit_approve(
            request_id=request_id,
            approver=approver,
            limit=None,
            term_days=None,
            notes="Buen historial",
        )
    with factories.scoped(org_a.organization_id):
        credit_suspend(account_id=account_id, reason="Cheque devuelto", actor=approver)
    payload = {
        "data": {"customer_id": str(customer.customer_id), "old_tier": "bronze", "new_tier": "gold"}
    }
    with factories.scoped(org_a.organization_id):
        db.session.execute(
            sa.text(
                "INSERT INTO event_inbox (organization_id, event_id, event_type, occurred_at,"
                " payload, payload_hash, status) VALUES (:org, :id,"
                " 'pricing.loyalty.tier_changed', :at, CAST(:payload AS jsonb), repeat('a', 64),"
                " 'processed')"
            ),
            {
                "org": org_a.organization_id,
                "id": uuid.uuid4(),
                "at": datetime.now(UTC) - timedelta(hours=1),
                "payload": json.dumps(payload),
            },
        )
        segments_recompute()  # first computation: nothing changed yet
        db.session.commit()
    for days in (1, 2, 3, 4, 5):
        factories.order_number(
            org_a.organization_id,
            customer.customer_id,
            completed_at=datetime.now(UTC) - timedelta(days=days),
        )
    other = factories.customer_create(org_a.organization_id)
    factories.order_number(
        org_a.organization_id,
        other.customer_id,
        completed_at=datetime.now(UTC) - timedelta(days=300),
    )
    with factories.scoped(org_a.organization_id):
        segments_recompute()
        db.session.commit()
    client = login_as("branch_staff")
    page = _page(client, customer)
    assert "Crédito solicitado" in page and "Límite solicitado: US$500.00" in page
    assert "Crédito aprobado" in page and "Notas de la decisión: Buen historial" in page
    assert "Crédito suspendido" in page and "Motivo: Cheque devuelto" in page
    assert "Nivel de lealtad: Oro" in page and "Antes: Bronce" in page
    assert "Segmento: Campeones" in page and "Antes: Nuevos" in page
    credit_only = client.get(f"/customers/{customer.customer_id}/timeline?kind=credit").text
    assert "Crédito suspendido" in credit_only and "Nivel de lealtad: Oro" not in credit_only


def test_the_feed_is_filtered_by_kind_and_paged_by_keyset(login_as, customer):
    client = login_as("branch_staff")
    _page(client, customer)
    client.post(
        f"/customers/{customer.customer_id}/status",
        {"status": "inactive", "status_reason": "Se mudó", "version_id": "1"},
    )
    for number in range(23):
        _note(client, customer, f"Nota número {number:02d}")
    first = client.get(f"/customers/{customer.customer_id}/timeline?kind=note", headers=HTMX)
    assert first.status_code == 200
    assert first.text.count('class="note-body"') == 20
    assert "Nota número 22" in first.text and "Nota número 02" not in first.text
    more = first.text.split('id="timeline-more"')[1].split('href="')[1].split('"')[0]
    second = client.get(more.replace("&amp;", "&"), headers=HTMX)
    assert second.text.count('class="note-body"') == 3
    assert "Nota número 00" in second.text and 'id="timeline-more"' not in second.text
    everything = client.get(f"/customers/{customer.customer_id}/timeline").text
    assert "<html" in everything and "Cambio de estado" not in everything  # page 1: notes
    changes = client.get(f"/customers/{customer.customer_id}/timeline?kind=change").text
    assert "Cambio de estado" in changes and "Nota número" not in changes


@pytest.mark.parametrize("query", ["kind=chisme", "after=2026-01-01_x1", "after=nada"])
def test_a_tampered_filter_or_cursor_is_a_400(login_as, customer, query):
    client = login_as("branch_staff")
    assert client.get(f"/customers/{customer.customer_id}/timeline?{query}").status_code == 400


def test_each_source_of_the_feed_is_read_through_its_index_as_the_app_role(app, org_a, customer):
    from portal.customers.timeline import PAGE_SIZE, _feed

    with factories.scoped(org_a.organization_id):
        statement = _feed(tuple(TIMELINE_KINDS), False).params(
            customer_id=customer.customer_id,
            customer_text=str(customer.customer_id),
            limit=PAGE_SIZE + 1,
        )
        compiled = statement.compile(
            dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}
        )
        db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        explained = db.session.connection().exec_driver_sql(f"EXPLAIN {compiled}")
        plan = "\n".join(row[0] for row in explained)
    for index in (
        "idx_audit_entity",
        "idx_inbox_customer_tier",
        "idx_customer_segment_changes_customer",
        "idx_customer_notes_customer",
    ):
        assert index in plan, plan
