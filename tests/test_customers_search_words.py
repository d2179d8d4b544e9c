"""Name search as words: ties, digits, typos, word order, accents, prefixes, the word dictionary
that follows every customer write, isolation between organizations, and the plans under RLS."""

import html
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.audit import SYSTEM_ACTOR
from portal.customers.models import Customer
from portal.customers.services import customer_update
from portal.db import organization_scope
from portal.extensions import db
from portal.seed import CUSTOMER_COLUMNS, customer_rows, customers_bulk_load
from tests import factories

FIRST, LAST = CUSTOMER_COLUMNS.index("first_name"), CUSTOMER_COLUMNS.index("last_name")
CREATED = CUSTOMER_COLUMNS.index("created_at")
PURCHASED = CUSTOMER_COLUMNS.index("last_purchase_at")


def _rows(client, url: str) -> tuple[list[str], str | None]:
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.text[:300]
    rows = re.findall(r'<a href="/customers/([0-9a-f-]{36})">', response.text)
    more = re.search(r'<tr id="load-more">.*?hx-get="([^"]+)"', response.text, re.S)
    return rows, html.unescape(more.group(1)) if more else None


def _every_page(client, query: str) -> list[str]:
    url, seen = f"/customers/?q={query}", []
    while url:
        rows, url = _rows(client, url)
        seen += rows
    return seen


def _twins(organization_id, count: int, first: str, last: str, *, start: int) -> None:
    """`count` customers with the same name and the very same activity time: exact ties."""
    moment = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    rows = []
    for row in customer_rows(count, start=start, email_domain=f"t{start}.pa"):
        row = list(row)
        row[FIRST], row[LAST], row[CREATED], row[PURCHASED] = first, last, moment, None
        rows.append(tuple(row))
    customers_bulk_load(organization_id, rows)


@pytest.fixture
def named(org_a, org_b):
    """Customers whose names exercise the word search, and look-alikes in organization B."""
    a = org_a.organization_id
    made = {
        key: factories.customer_create(a, first_name=first, last_name=last)
        for key, first, last in (
            ("maria", "María José", "González Ríos"),
            ("farmacia", "Farmacia 24", "S.A."),
            ("farmacia25", "Farmacia 25", "S.A."),
            ("via", "Ferretería", "Vía 321"),
            ("hector", "Héctor", "Domínguez"),
        )
    }
    made["other"] = factories.customer_create(
        org_b.organization_id, first_name="Xiomara", last_name="Zambrano Quintanilla"
    )
    return made


@pytest.mark.parametrize(
    "query, key",
    [
        ("maria gonzalez", "maria"),
        ("gonzalez maria", "maria"),  # any order
        ("rios maria jose", "maria"),
        ("MARÍA GONZÁLEZ", "maria"),  # accents and case
        ("maría gonzalez rios", "maria"),
        ("maria gonzales rioz", "maria"),  # one typo in each of two words
        ("hetcor dominguz", "hector"),
        ("maria gonz", "maria"),  # the word being typed is a prefix
        ("gonz", "maria"),
        ("mar gonz", "maria"),  # every word may be a beginning ("name fragments")
        ("gonz mar", "maria"),
        ("jos rio gonz", "maria"),
        ("farmacia 24", "farmacia"),  # digits are words
        ("24 farmacia", "farmacia"),
        ("via 321", "via"),
        ("321", "via"),  # a short number is also a name word
        ("ferreteria 32", "via"),
    ],
)
def test_names_are_found_by_their_words(login_as, named, query, key):
    rows, _ = _rows(login_as("branch_staff"), f"/customers/?q={query}")
    assert str(named[key].customer_id) in rows


def test_every_typed_word_must_match(login_as, named):
    client = login_as("branch_staff")
    rows, _ = _rows(client, "/customers/?q=farmacia 24")
    assert str(named["farmacia25"].customer_id) not in rows
    rows, _ = _rows(client, "/customers/?q=maria dominguez")
    assert rows == []


def test_exact_words_rank_above_corrections(login_as, org_a):
    exact = factories.customer_create(org_a.organization_id, first_name="Ana", last_name="Vásquez")
    typo = factories.customer_create(org_a.organization_id, first_name="Ana", last_name="Vásques")
    rows, _ = _rows(login_as("branch_staff"), "/customers/?q=ana vasquez")
    assert rows[:2] == [str(exact.customer_id), str(typo.customer_id)]


def test_a_word_without_near_spellings_reads_a_few_dictionary_words(app, org_a):
    """Correcting a typed word asks the trigram index for its near spellings only: a word with
    fewer than five of them must not walk the rest of the dictionary (0030). Counted from the
    transaction's own table statistics: dictionary rows fetched through an index."""
    with app.app_context():
        rows = []
        for number, row in enumerate(customer_rows(1_000, start=740_000, email_domain="d.pa")):
            row = list(row)
            row[FIRST] = f"Farmacia {number}"  # 1,000 words, none near a typed word below
            rows.append(tuple(row))
        customers_bulk_load(org_a.organization_id, rows)
    fetched = sa.text(
        "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname = 'customer_name_words'"
    )
    with app.app_context(), organization_scope(org_a.organization_id):
        words = db.session.scalar(sa.text("SELECT count(*) FROM customer_name_words"))
        before = db.session.scalar(fetched)
        db.session.execute(sa.text("SELECT * FROM customer_search('farmacai zqwx', p_limit => 26)"))
        read = db.session.scalar(fetched) - before
        db.session.commit()
    assert words > 900
    assert read < 50, f"{read} of {words} dictionary words read for two typed words"


def test_a_thousand_identical_names_page_completely_and_stably(app, login_as, org_a):
    with app.app_context():
        _twins(org_a.organization_id, 1001, "José", "Pérez", start=700_000)
    newest = factories.customer_create(org_a.organization_id, first_name="Jose", last_name="Perez")
    client = login_as("branch_staff")
    seen = _every_page(client, "jose perez")
    assert len(seen) == 1002 and len(set(seen)) == 1002, "a customer was skipped or repeated"
    assert seen[0] == str(newest.customer_id), "the most recently active comes first"
    assert seen[1:] == sorted(seen[1:], reverse=True), "ties are ordered by customer id"
    assert _every_page(client, "perez jose") == seen, "the order is not stable"
    count = client.get("/customers/count?q=jose perez").text
    assert "Más de 1,000 clientes" in count


def test_count_is_exact_below_the_cap(app, login_as, org_a):
    with app.app_context():
        _twins(org_a.organization_id, 30, "Zoila", "Quintero", start=720_000)
    assert "30 clientes" in login_as("branch_staff").get("/customers/count?q=quintero").text


def _dictionary(app, organization_id) -> dict[str, int]:
    with app.app_context(), organization_scope(organization_id):
        words = dict(
            db.session.execute(sa.text("SELECT word, frequency FROM customer_name_words")).all()
        )
        db.session.commit()
    return words


def test_the_dictionary_follows_inserts_renames_and_deletes(app, login_as, org_a):
    a = org_a.organization_id
    first = factories.customer_create(a, first_name="Zoila", last_name="Quintero")
    factories.customer_create(a, first_name="Zoila", last_name="Quiroz")
    assert {"zoila": 2, "quintero": 1, "quiroz": 1}.items() <= _dictionary(app, a).items()

    with app.app_context(), organization_scope(a):
        customer_update(
            customer_id=first.customer_id,
            data={"last_name": "Quiroz"},
            version_id=1,
            actor=SYSTEM_ACTOR,
        )
    words = _dictionary(app, a)
    assert "quintero" not in words and words["quiroz"] == 2 and words["zoila"] == 2
    client = login_as("branch_staff")
    assert _rows(client, "/customers/?q=zoila quintero")[0] == []

    with app.app_context(), organization_scope(a):
        db.session.execute(sa.delete(Customer).where(Customer.customer_id == first.customer_id))
        db.session.commit()
    words = _dictionary(app, a)
    assert words["quiroz"] == 1 and words["zoila"] == 1

    with app.app_context():
        _twins(a, 3, "Zoila", "Quiroz", start=730_000)
    assert _dictionary(app, a)["quiroz"] == 4
    assert len(_every_page(client, "zoila quiroz")) == 4


def test_other_organizations_words_never_suggest_or_match(app, login_as, named, org_a, org_b):
    assert "xiomara" in _dictionary(app, org_b.organization_id)
    assert "xiomara" not in _dictionary(app, org_a.organization_id)
    client = login_as("branch_staff")
    for query in ("xiomara", "xiomra", "zambrano quintanilla", "quintan"):
        assert _rows(client, f"/customers/?q={query}")[0] == []
        assert "0 clientes" in client.get(f"/customers/count?q={query}").text
    own = factories.customer_create(org_a.organization_id, first_name="Xiomara", last_name="Ruiz")
    assert _rows(client, "/customers/?q=xiomara")[0] == [str(own.customer_id)]


@pytest.fixture
def words_org(app, org_a, org_b):
    """Enough customers for the planner to prefer indexes, in two organizations, analysed."""
    with app.app_context():
        customers_bulk_load(org_a.organization_id, customer_rows(20_000, start=100_000))
        customers_bulk_load(
            org_b.organization_id, customer_rows(5_000, start=150_000, email_domain="b.pa")
        )
    return org_a


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _plan_indexes(plan: dict) -> set[str]:
    found = set()
    for node in _plan_nodes(plan):
        assert not (node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "customers")
        if "Index Name" in node:
            found.add(node["Index Name"])
    return found


@pytest.mark.parametrize(
    "query, expected",
    [
        ("jose perez", {"idx_customers_name_words"}),  # a rare pair: GIN, then sorted
        ("*", {"idx_customers_name_words", "idx_customers_activity"}),  # common word: walk
        ("gonzales", {"idx_customers_name_words"}),
        ("maria gonz", {"idx_customers_name_words"}),
        ("maria.gonz", {"idx_customers_email_prefix"}),
    ],
)
def test_every_statement_of_a_name_search_uses_indexes_as_the_app_role(
    app, words_org, owner_engine, query, expected
):
    with owner_engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE customers")
    with app.app_context(), organization_scope(words_org.organization_id):
        role = sa.text("SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user")
        assert db.session.scalar(role) is False
        if query == "*":  # the organization's most frequent name word
            query = db.session.scalar(
                sa.text("SELECT word FROM customer_name_words ORDER BY frequency DESC LIMIT 1")
            )
        plans = db.session.scalars(
            sa.text("SELECT plan::text FROM customer_search_explain(:q, p_limit => 26) AS plan"),
            {"q": query},
        ).all()
        db.session.commit()
    assert plans
    used = set()
    for plan in plans:
        indexes = _plan_indexes(json.loads(plan)[0]["Plan"])
        assert indexes, plan  # each statement reads through an index
        used |= indexes
    assert expected <= used, used


def test_a_large_group_is_read_month_by_month_completely_in_order(
    app, login_as, words_org, owner_engine
):
    """A group of ~600 matches in 20,000 customers is read one month of activity at a time
    (idx_customers_name_months), newest first; paging still lists every match once, in order."""
    start = datetime(2024, 3, 1, 12, tzinfo=UTC)
    rows = []
    for number, row in enumerate(customer_rows(600, start=300_000, email_domain="m.pa")):
        row = list(row)
        row[FIRST], row[PURCHASED] = "Rigoberto", None
        row[CREATED] = start + timedelta(hours=31 * number)  # ~25 months, a few per day
        rows.append(tuple(row))
    with app.app_context():
        customers_bulk_load(words_org.organization_id, rows)
        with owner_engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE customers")
        with organization_scope(words_org.organization_id):
            plans = db.session.scalars(
                sa.text(
                    "SELECT plan::text "
                    "FROM customer_search_explain('rigoberto', p_limit => 26) AS plan"
                )
            ).all()
            expected = [
                str(customer_id)
                for customer_id in db.session.scalars(
                    sa.text(
                        "SELECT customer_id FROM customers WHERE 'rigoberto' = ANY (name_words) "
                        "ORDER BY activity_at DESC, customer_id DESC"
                    )
                )
            ]
            db.session.commit()
    used = set().union(*(_plan_indexes(json.loads(plan)[0]["Plan"]) for plan in plans))
    assert "idx_customers_name_months" in used, used
    assert len(expected) == 600
    assert _every_page(login_as("branch_staff"), "rigoberto") == expected


def test_a_small_organization_reads_names_through_the_word_keys_alone(
    app, org_a, org_b, owner_engine
):
    """The GIN keys already name the organization: in an organization a tenth of the table, the
    planner must not AND a bitmap of the whole organization to their posting list (0028)."""
    with app.app_context():
        customers_bulk_load(org_a.organization_id, customer_rows(3_000, start=400_000))
        customers_bulk_load(
            org_b.organization_id, customer_rows(30_000, start=500_000, email_domain="b.pa")
        )
    with owner_engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE customers")
    with app.app_context(), organization_scope(org_a.organization_id):
        common = db.session.scalar(
            sa.text("SELECT word FROM customer_name_words ORDER BY frequency DESC LIMIT 1")
        )
        explain = sa.text(
            "SELECT plan::text FROM customer_search_explain(:q, p_limit => 26) AS plan"
        )
        plans = [
            json.loads(plan)[0]["Plan"]
            for query in (common, "jose perez", "gonzales", "maria gonz")
            for plan in db.session.scalars(explain, {"q": query})
        ]
        db.session.commit()
    assert plans
    for plan in plans:
        assert "BitmapAnd" not in {node["Node Type"] for node in _plan_nodes(plan)}, plan
