"""The header search: its dropdown of best matches, and the recent customers when it is empty."""

import re

import pytest

from portal.customers.recent import RECENT_KEY, RECENT_LIMIT
from portal.tasks import redis_connection
from tests import factories
from tests.test_request_path import wire_counts

HTMX = {"HX-Request": "true"}
OPTION_NAME = re.compile(r'role="option"[^>]*>\s*<strong>(.*?)</strong>', re.S)


def _quick(client, q="", expect=200):
    response = client.get("/customers/quick", query_string={"q": q}, headers=HTMX)
    assert response.status_code == expect, response.text[:500]
    return response.text


def _names(text: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", name) for name in OPTION_NAME.findall(text)]


@pytest.fixture
def staff(login_as):
    return login_as("branch_staff")


def test_the_dropdown_lists_matches_of_my_organization_only(staff, org_a, org_b):
    factories.customer_create(org_a.organization_id, first_name="Irene", last_name="Rodríguez")
    factories.customer_create(org_b.organization_id, first_name="Irene", last_name="Rodríguez B")
    text = _quick(staff, "irene rodriguez")
    assert _names(text) == ["Irene Rodríguez"]
    assert "Ver todos los resultados de «irene rodriguez»" in text
    assert 'href="/customers/?q=irene+rodriguez"' in text


def test_a_search_that_finds_nobody_says_so(staff, org_a):
    text = _quick(staff, "zzzqqq")
    assert 'role="option"' not in text
    assert "No encontramos clientes para «zzzqqq»." in text


def test_the_dropdown_shows_a_few_best_matches(staff, org_a):
    for number in range(12):
        factories.customer_create(
            org_a.organization_id, first_name="Ramona", last_name=f"Díaz {number}"
        )
    assert len(_names(_quick(staff, "ramona"))) == 8


def test_an_empty_box_lists_the_customers_i_opened_newest_first(staff, login_as, org_a):
    first = factories.customer_create(org_a.organization_id, first_name="Ana", last_name="Uno")
    second = factories.customer_create(org_a.organization_id, first_name="Beto", last_name="Dos")
    assert "Aún no ha abierto clientes." in _quick(staff)
    for customer in (first, second, first):
        assert staff.get(f"/customers/{customer.customer_id}").status_code == 200
    text = _quick(staff)
    assert "Clientes recientes" in text
    assert _names(text) == ["Ana Uno", "Beto Dos"]  # opened again: moved up, not repeated
    assert _names(_quick(login_as("credit_staff"))) == []  # another staff member's list


def test_the_recent_list_is_capped(staff, org_a):
    customers = [factories.customer_create(org_a.organization_id) for _ in range(RECENT_LIMIT + 2)]
    for customer in customers:
        staff.get(f"/customers/{customer.customer_id}")
    names = _names(_quick(staff))
    assert len(names) == RECENT_LIMIT
    assert names[0] == customers[-1].full_name


def test_recent_customers_never_cross_organizations(staff, login_as, org_a, org_b):
    ours = factories.customer_create(org_a.organization_id, first_name="Nuestra")
    theirs = factories.customer_create(org_b.organization_id, first_name="Ajena")
    staff.get(f"/customers/{ours.customer_id}")
    # Another organization's id in my list (planted): RLS still hides it.
    user = org_a.users["branch_staff"]
    with staff.http.application.app_context():
        key = RECENT_KEY.format(org_a.organization_id, user.staff_user_id)
        redis_connection().lpush(key, str(theirs.customer_id), "not-a-uuid")
    assert [name.split()[0] for name in _names(_quick(staff))] == ["Nuestra"]
    other = login_as("branch_staff", organization=org_b)
    assert _names(_quick(other)) == []
    assert other.get(f"/customers/{ours.customer_id}").status_code == 404


def test_names_and_the_query_are_escaped(staff, org_a):
    factories.customer_create(
        org_a.organization_id, first_name="<script>x</script>", last_name="Ruiz"
    )
    text = _quick(staff, "<script>")
    assert "<script>x" not in text
    assert "&lt;script&gt;" in text


@pytest.mark.parametrize(
    "q", ["9" * 20_000, "\u202e\u200b\u0007\u001b[31m", "١٢٣", "%", "'; DROP TABLE customers; --"]
)
def test_bad_input_never_breaks_the_dropdown(staff, org_a, q):
    factories.customer_create(org_a.organization_id)
    text = _quick(staff, q)
    assert 'role="option"' in text or "No encontramos clientes" in text


def test_a_nul_character_is_refused_like_everywhere_else(staff):
    _quick(staff, "a\x00b", expect=400)


def test_without_htmx_the_quick_search_is_the_customers_search(staff):
    response = staff.get("/customers/quick?q=ana")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/customers/?q=ana")


def test_the_header_search_is_on_every_page(staff):
    page = staff.get("/segments/").text
    assert 'id="quick-q"' in page and 'role="combobox"' in page
    assert 'hx-get="/customers/quick"' in page


def test_the_recent_list_costs_one_redis_round_trip_to_write_and_one_to_read(app, staff, org_a):
    customer = factories.customer_create(org_a.organization_id)
    staff.get(f"/customers/{customer.customer_id}")  # the session's user is cached from now on
    with wire_counts(app) as opened:
        staff.get(f"/customers/{customer.customer_id}")
    with wire_counts(app) as read:
        text = _quick(staff)
    assert _names(text) == [customer.full_name]
    # One trip is the session check every request makes (with the cached user).
    assert opened.redis_round_trips == 2
    assert read.redis_round_trips == 2
    assert len(read.statements) == 2, read.statements  # the scope, then the recent customers
