"""Customer search: every kind of key, filters, keyset pages, isolation, indexes under RLS."""

import html
import json
import re
import uuid

import pytest
import sqlalchemy as sa

from portal.db import organization_scope
from portal.extensions import db
from portal.seed import customer_rows, customers_bulk_load
from portal.segments.models import CustomerSegment
from tests import factories


def _search(client, expect=200, **params):
    response = client.get("/customers/", query_string=params, headers={"HX-Request": "true"})
    assert response.status_code == expect, response.text[:500]
    return response.text


@pytest.fixture
def people(org_a, org_b):
    """A few customers of org A, and look-alikes in org B that must never show up."""
    a = org_a.organization_id
    made = {
        "jose": factories.customer_create(
            a,
            first_name="José",
            last_name="Pérez",
            email="jose.perez@correo.pa",
            phone="+50761234567",
            document_number="8-123-4567",
        ),
        "maria": factories.customer_create(
            a,
            first_name="María",
            last_name="González Ríos",
            email="maria.gonzalez@correo.pa",
            phone="+50762223333",
            document_type="passport",
            document_number="PA1234567",
        ),
        "empresa": factories.customer_create(
            a,
            company_name="Ferretería El Istmo, S.A.",
            first_name="Pedro",
            last_name="Ábrego",
            customer_type="b2b",
            email="compras@istmo.pa",
            phone="+5072345678",
            document_type="ruc",
            document_number="155600-1-2024",
            status="blocked",
            loyalty_tier="gold",
        ),
    }
    made["other_org"] = factories.customer_create(
        org_b.organization_id,
        first_name="José",
        last_name="Pérez Otro",
        email="jose.otro@correo.pa",
        phone="+50769998888",
        document_number="8-999-1111",
    )
    return made


@pytest.mark.parametrize(
    "query, expected",
    [
        ("jose perez", "José"),
        ("JOSÉ PÉREZ", "José"),
        ("perez jose", "José"),
        ("jose perz", "José"),  # a typo
        ("gonzales", "María"),  # a typo with an accent missing
        ("maria gonz", "María"),  # fragments
        ("ferreteria istmo", "Ferretería"),
        ("jose.per", "José"),  # email prefix
        ("MARIA.GONZALEZ@correo.pa", "María"),  # whole email, any case
        ("6123-4567", "José"),  # local phone with a dash
        ("+507 6123 4567", "José"),
        ("(507) 6123-4567", "José"),
        ("61234567", "José"),
        ("6222", "María"),  # phone prefix while typing
        ("8-123-4567", "José"),  # cédula exact
        ("8-123", "José"),  # cédula prefix
        ("pa1234567", "María"),  # passport, any case
        ("155600-1", "Ferretería"),  # RUC prefix
    ],
)
def test_search_finds_each_kind_of_key(login_as, people, query, expected):
    page = _search(login_as("branch_staff"), q=query)
    assert expected in page
    assert "Pérez Otro" not in page


@pytest.mark.parametrize(
    "query",
    ["jose.otro@correo.pa", "jose.otro", "6999-8888", "+50769998888", "8-999-1111", "pérez otro"],
)
def test_another_organizations_customers_never_appear(login_as, people, query):
    page = _search(login_as("branch_staff"), q=query)
    assert str(people["other_org"].customer_id) not in page


def test_results_show_count_and_highlight_safely(login_as, people, org_a):
    factories.customer_create(
        org_a.organization_id, first_name="<script>alert(1)</script>", last_name="Pérez"
    )
    client = login_as("branch_staff")
    page = _search(client, q="perez")
    assert 'hx-get="/customers/count?q=perez"' in page  # the count follows the rows
    assert "2 clientes para «perez»" in client.get("/customers/count?q=perez").text
    assert "2 clientes" in client.get("/customers/?q=perez").text  # without htmx: inline
    assert "<mark>Pérez</mark>" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_blocked_status_is_visible_in_results(login_as, people):
    page = _search(login_as("branch_staff"), q="istmo")
    assert "is-blocked" in page and "Bloqueado" in page


@pytest.mark.parametrize(
    "filters, present, absent",
    [
        ({"status": "blocked"}, "Ferretería", "José"),
        ({"customer_type": "b2b"}, "Ferretería", "María"),
        ({"loyalty_tier": "gold"}, "Ferretería", "José"),
        ({"segment": "champions"}, "María", "José"),
        ({"segment": "new"}, "José", "María"),
    ],
)
def test_filters_with_and_without_a_query(app, login_as, people, org_a, filters, present, absent):
    with app.app_context(), organization_scope(org_a.organization_id):
        db.session.add(
            CustomerSegment(customer_id=people["maria"].customer_id, segment_code="champions")
        )
        db.session.commit()
    client = login_as("branch_staff")
    page = _search(client, q="", **filters)
    assert present in page and absent not in page
    for query in ("jose", "maria", "istmo"):  # with a query the filters still apply
        assert absent not in _search(client, q=query, **filters)


def test_empty_query_lists_most_recently_active_first(login_as, org_a):
    first = factories.customer_create(org_a.organization_id, first_name="Primero")
    factories.customer_create(org_a.organization_id, first_name="Segundo")
    page = _search(login_as("branch_staff"), q="")
    assert page.index("Segundo") < page.index("Primero")
    assert first


def _page_rows_and_next(client, url: str) -> tuple[list[str], str | None]:
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    rows = re.findall(r'<a href="/customers/([0-9a-f-]{36})">', response.text)
    more = re.search(r'<tr id="load-more">.*?hx-get="([^"]+)"', response.text, re.S)
    return rows, html.unescape(more.group(1)) if more else None


def test_keyset_pages_are_stable_and_complete(app, login_as, org_a):
    with app.app_context():
        customers_bulk_load(
            org_a.organization_id, customer_rows(60, start=500, email_domain="p.pa")
        )
    client = login_as("branch_staff")
    for query in ("", "6000 05", "@p.pa"):
        url, seen, pages = f"/customers/?q={query}", [], 0
        while url:
            rows, url = _page_rows_and_next(client, url)
            seen += rows
            pages += 1
        assert len(seen) == len(set(seen)), "a customer appeared on two pages"
        if query != "@p.pa":
            assert len(seen) == 60 and pages == 3, query
        first_again, _ = _page_rows_and_next(client, f"/customers/?q={query}")
        assert first_again == seen[: len(first_again)], "order is not stable"


def test_load_more_puts_the_pages_in_the_url_and_that_url_shows_them_all(app, login_as, org_a):
    with app.app_context():
        customers_bulk_load(
            org_a.organization_id, customer_rows(60, start=700, email_domain="m.pa")
        )
    client = login_as("branch_staff")
    for query in ("", "6000 07"):
        first, more = _page_rows_and_next(client, f"/customers/?q={query}")
        response = client.get(more, headers={"HX-Request": "true"})
        pushed = response.headers["HX-Push-Url"]
        assert "pages=2" in pushed and "after=" not in pushed
        second = re.findall(r'<a href="/customers/([0-9a-f-]{36})">', response.text)
        whole = client.get(pushed)  # Back or reload: a full page of both pages at once
        assert whole.status_code == 200
        rows = re.findall(r'<a href="/customers/([0-9a-f-]{36})">', whole.text)
        assert rows == first + second
        nojs = re.search(r'<tr id="load-more">.*?href="([^"]+)"', whole.text, re.S)
        assert "pages=3" in html.unescape(nojs.group(1))  # without JavaScript: all three
    everything = client.get("/customers/?pages=1000000")  # capped, never a 500
    assert everything.status_code == 200 and 'id="load-more"' not in everything.text


@pytest.mark.parametrize("pages", ["0", "-1", "x", "1e9"])
def test_a_forged_page_count_is_400(login_as, pages):
    _search(login_as("branch_staff"), expect=400, pages=pages)


def test_tampered_cursor_and_filters_are_400(login_as):
    client = login_as("branch_staff")
    _search(client, expect=400, after="x' OR 1=1")
    _search(client, expect=400, after=f"abc_{uuid.uuid4()}")
    _search(client, expect=400, q="jose", after=f"abc_{uuid.uuid4()}")
    _search(client, expect=400, status="deleted")
    _search(client, expect=400, segment="<script>")
    _search(client, expect=400, customer_type="b2x")


@pytest.mark.parametrize(
    "query", ["%", "_", "%%%", "'", '"', "\\", "a" * 10_000, "🙂", "\x00", "' OR 1=1 --"]
)
def test_odd_queries_are_safe(login_as, people, query):
    if "\x00" in query:  # PostgreSQL text cannot hold NUL: refused up front
        _search(login_as("branch_staff"), expect=400, q=query)
        return
    page = _search(login_as("branch_staff"), q=query)
    assert "José" not in page or query == "'"


def test_full_page_without_javascript_and_url_keeps_the_query(login_as, people):
    response = login_as("branch_staff").get("/customers/?q=jose")
    assert response.status_code == 200
    assert 'value="jose"' in response.text and "<html" in response.text


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


@pytest.fixture
def big_org(app, org_a, org_b):
    """Enough customers for the planner to prefer indexes, in two organizations, analysed."""
    with app.app_context():
        customers_bulk_load(org_a.organization_id, customer_rows(30_000, start=10_000))
        customers_bulk_load(
            org_b.organization_id, customer_rows(5_000, start=50_000, email_domain="b.pa")
        )
    return org_a


@pytest.mark.parametrize(
    "query", ["jose perez", "gonzales", "jose.perez", "6123-4567", "+507 6000 0", "8-1-2", "PE-12"]
)
def test_search_plan_uses_indexes_as_the_app_role(app, big_org, owner_engine, query):
    with owner_engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE customers")
    with app.app_context(), organization_scope(big_org.organization_id):
        plan_text = db.session.scalar(
            sa.text("SELECT plan::text FROM customer_search_explain(:q, p_limit => 26) AS plan"),
            {"q": query},
        )
        assert db.session.scalar(sa.text("SELECT current_user")) != "postgres"
    nodes = list(_plan_nodes(json.loads(plan_text)[0]["Plan"]))
    scans = [(node["Node Type"], node.get("Relation Name")) for node in nodes]
    assert ("Seq Scan", "customers") not in scans, scans
    assert any(
        node.get("Index Name", "").startswith(("idx_customers", "customers_pkey")) for node in nodes
    ), scans


def test_recent_customers_plan_uses_the_activity_index(app, big_org, owner_engine):
    with owner_engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE customers")
    from portal.customers.models import Customer
    from portal.customers.selectors import SearchFilters, _recent_statement

    with app.app_context(), organization_scope(big_org.organization_id):
        statement = (
            _recent_statement(SearchFilters())
            .order_by(Customer.activity_at.desc(), Customer.customer_id.desc())
            .limit(26)
        )
        compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = "\n".join(db.session.scalars(sa.text(f"EXPLAIN {compiled}")))
    assert "idx_customers_activity" in plan and "Seq Scan on customers" not in plan
