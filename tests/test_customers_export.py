"""CSV export of the current search: escaping, formula neutralisation, streaming, isolation."""

import csv
import io

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
    rows = _csv(login_as("branch_staff").get("/customers/export.csv"))
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
    client = login_as("branch_staff")
    assert [row[1] for row in _csv(client.get("/customers/export.csv?q=jose perz"))[1:]] == ["José"]
    assert [row[1] for row in _csv(client.get("/customers/export.csv?status=blocked"))[1:]] == [
        "María"
    ]
    assert client.get("/customers/export.csv?status=nope").status_code == 400


def test_export_streams_many_rows(app, login_as, org_a):
    with app.app_context():
        customers_bulk_load(org_a.organization_id, customer_rows(3000, start=900_000))
    response = login_as("branch_staff").get("/customers/export.csv")
    assert response.is_streamed
    chunks = list(response.response)
    assert len(chunks) > 3  # sent in pieces, not built in memory first
    text = b"".join(chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in chunks)
    assert text.count(b"\n") >= 3001


def test_csv_helpers():
    assert spreadsheet_safe("-2+3") == "'-2+3"
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("\t=1") == "'\t=1"
    assert spreadsheet_safe(None) == ""
    assert spreadsheet_safe("Normal, con coma") == "Normal, con coma"
    text = "".join(csv_lines(["a"], ([n] for n in range(10))))
    assert text.splitlines() == ["a", *map(str, range(10))]
