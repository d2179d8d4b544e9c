"""CSV export of the current search: who may, cap, audit, rate limit, escaping, streaming."""

import csv
import io

import pytest

from portal import config
from portal.csv_export import csv_lines, spreadsheet_safe
from portal.seed import customer_rows, customers_bulk_load
from tests import factories


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_export_escapes_and_neutralises_formulas(login_as, org_a, org_b):
    tricky = factories.customer_create(
        org_a.organization_id,
        first_name='=HYPERLINK("http://x","clic")',
        last_name='Pérez, "El Toro"\nSegunda línea',
        email="+malo@correo.pa",
    )
    factories.customer_create(org_b.organization_id, first_name="Ajeno")
    rows = _csv(login_as("credit_staff").get("/customers/export.csv"))
    header, (row,) = rows[0], rows[1:]
    assert header[:3] == ["ID", "Nombre", "Apellido"]
    assert row[0] == str(tricky.customer_id)
    assert row[1] == '\'=HYPERLINK("http://x","clic")'
    assert row[2] == 'Pérez, "El Toro"\nSegunda línea'
    assert row[3] == "'+malo@correo.pa"
    assert row[4].startswith("'+507")


def test_export_follows_the_search_and_filters(login_as, org_a):
    factories.customer_create(org_a.organization_id, first_name="José", last_name="Pérez")
    factories.customer_create(
        org_a.organization_id, first_name="María", last_name="Rivas", status="blocked"
    )
    client = login_as("credit_staff")
    assert [row[1] for row in _csv(client.get("/customers/export.csv?q=jose perz"))[1:]] == ["José"]
    assert [row[1] for row in _csv(client.get("/customers/export.csv?status=blocked"))[1:]] == [
        "María"
    ]
    assert client.get("/customers/export.csv?status=nope").status_code == 400


def test_export_streams_many_rows(app, login_as, org_a):
    with app.app_context():
        customers_bulk_load(org_a.organization_id, customer_rows(3000, start=900_000))
    response = login_as("credit_staff").get("/customers/export.csv")
    assert response.is_streamed
    chunks = list(response.response)
    assert len(chunks) > 3  # sent in pieces, not built in memory first
    text = b"".join(chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in chunks)
    assert text.count(b"\n") >= 3001


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("branch_staff", False),
        ("credit_staff", True),
        ("credit_approver", True),
        ("org_admin", True),
    ],
)
def test_export_is_for_credit_staff_and_above(login_as, org_a, role, allowed):
    factories.customer_create(org_a.organization_id)
    client = login_as(role)
    assert ("Exportar CSV" in client.get("/customers/").text) is allowed
    response = client.get("/customers/export.csv")
    assert response.status_code == (200 if allowed else 403)
    assert len(factories.audit_entries(org_a.organization_id, "clientes.csv")) == int(allowed)


def test_each_export_is_audited_with_who_filters_and_rows(login_as, org_a):
    for number in range(3):
        factories.customer_create(org_a.organization_id, first_name=f"Ana {number}")
    factories.customer_create(org_a.organization_id, first_name="Bloqueada", status="blocked")
    client = login_as("credit_staff")
    assert len(_csv(client.get("/customers/export.csv?status=active&q=ana"))) == 4
    (entry,) = factories.audit_entries(org_a.organization_id, "clientes.csv")
    assert entry.action == "customer.exported"
    assert entry.actor_label == org_a.users["credit_staff"].email
    assert entry.actor_id == org_a.users["credit_staff"].staff_user_id
    assert entry.after == {
        "filters": {
            "query": "ana",
            "status": "active",
            "customer_type": None,
            "loyalty_tier": None,
            "segment": None,
        },
        "rows": 3,
    }


def test_export_above_the_cap_is_refused_with_a_clear_message(app, login_as, org_a, monkeypatch):
    assert config.TestingConfig().CUSTOMER_EXPORT_MAX_ROWS == 100_000
    monkeypatch.setitem(app.config, "CUSTOMER_EXPORT_MAX_ROWS", 3)
    for _ in range(4):
        factories.customer_create(org_a.organization_id)
    client = login_as("credit_staff")
    refused = client.get("/customers/export.csv")
    assert refused.status_code == 422
    assert "más de 3 clientes" in refused.text and "filtros" in refused.text
    assert factories.audit_entries(org_a.organization_id, "clientes.csv") == []
    monkeypatch.setitem(app.config, "CUSTOMER_EXPORT_MAX_ROWS", 4)
    assert len(_csv(client.get("/customers/export.csv"))) == 5


def test_exports_are_rate_limited_per_user(app, login_as, org_a, monkeypatch):
    assert config.TestingConfig().CUSTOMER_EXPORT_RATE_LIMIT == "5 per hour"
    monkeypatch.setitem(app.config, "CUSTOMER_EXPORT_MAX_ROWS", 0)
    factories.customer_create(org_a.organization_id)
    client = login_as("credit_staff")
    assert client.get("/customers/export.csv").status_code == 422  # refused ones do not count
    monkeypatch.setitem(app.config, "CUSTOMER_EXPORT_MAX_ROWS", 10)
    for _ in range(5):
        _csv(client.get("/customers/export.csv"))
    blocked = client.get("/customers/export.csv")
    assert blocked.status_code == 429
    assert "máximo de exportaciones por hora" in blocked.text
    assert len(factories.audit_entries(org_a.organization_id, "clientes.csv")) == 5
    _csv(login_as("org_admin").get("/customers/export.csv"))  # another user has their own quota


def test_csv_helpers():
    assert spreadsheet_safe("-2+3") == "'-2+3"
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("\t=1") == "'\t=1"
    assert spreadsheet_safe(None) == ""
    assert spreadsheet_safe("Normal, con coma") == "Normal, con coma"
    text = "".join(csv_lines(["a"], ([n] for n in range(10))))
    assert text.splitlines() == ["a", *map(str, range(10))]
