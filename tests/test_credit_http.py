"""Charges and payments through the web: bad input is a field error and the ledger is unchanged."""

import uuid
from decimal import Decimal

import pytest

from portal import clock
from portal.credit.selectors import ledger_outstanding
from portal.credit.services import account_get
from tests import factories

HTMX = {"HX-Request": "true"}


@pytest.fixture
def account(org_a):
    customer = factories.customer_create(org_a.organization_id)
    return factories.credit_account_create(org_a.organization_id, customer.customer_id)


@pytest.fixture
def staff(login_as, account):
    client = login_as("credit_staff")
    client.get(f"/credit/accounts/{account.credit_account_id}")
    return client


def _ledger(org, account):
    with factories.scoped(org.organization_id):
        current = account_get(account.credit_account_id)
        assert current.credit_used == ledger_outstanding(account.credit_account_id)
        return current.credit_used


def _order(account) -> str:
    return factories.order_number(account.organization_id, account.customer_id)


def _charge(staff, account, amount="100.00", order=None):
    return staff.post(
        f"/credit/accounts/{account.credit_account_id}/usages",
        {"order_number": order or _order(account), "amount": amount},
        headers=HTMX,
    )


def _payment(staff, account, **overrides):
    data = {
        "amount": "40.00",
        "payment_method": "card",
        "payment_reference": "POS 1234",
        "payment_date": clock.today().isoformat(),
        "idempotency_key": str(uuid.uuid4()),
    } | overrides
    return staff.post(f"/credit/accounts/{account.credit_account_id}/payments", data, headers=HTMX)


def test_charge_and_pay_through_the_page(staff, org_a, account):
    response = _charge(staff, account, "100.00")
    assert response.status_code == 200 and "Cargo registrado a" in response.text
    assert 'id="credit-available">US$900.00<' in response.text
    response = _payment(staff, account)
    assert response.status_code == 200 and "registrado." in response.text
    assert 'id="credit-available">US$940.00<' in response.text
    assert _ledger(org_a, account) == Decimal("60.00")


@pytest.mark.parametrize(
    "amount, message",
    [
        ("-10", "mayor que cero"),
        ("0", "mayor que cero"),
        ("0.001", "dos decimales"),
        ("1e3", "monto en números"),
        ("NaN", "monto en números"),
        ("Infinity", "monto en números"),
        ("-Infinity", "monto en números"),
        ("diez", "monto en números"),
        ("", "Indique el monto"),
        ("99999999999999", "demasiado grande"),
        ("1000.01", "Crédito disponible insuficiente"),
    ],
)
def test_bad_charge_amounts(staff, org_a, account, amount, message):
    response = _charge(staff, account, amount)
    assert response.status_code == 422 and message in response.text
    assert _ledger(org_a, account) == 0


@pytest.mark.parametrize("order", ["", "F-9999999", "' OR 1=1 --", "1" * 300, "F 12"])
def test_bad_order_numbers(staff, org_a, account, order):
    response = staff.post(
        f"/credit/accounts/{account.credit_account_id}/usages",
        {"order_number": order, "amount": "5"},
        headers=HTMX,
    )
    assert response.status_code == 422
    assert _ledger(org_a, account) == 0


def test_retrying_an_order_shows_it_was_not_charged_twice(staff, org_a, account):
    order = _order(account)
    _charge(staff, account, "50.00", order)
    again = _charge(staff, account, "50.00", order)
    assert again.status_code == 200 and "no se cobró dos veces" in again.text
    assert _ledger(org_a, account) == Decimal("50.00")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"amount": "-1"}, "mayor que cero"),
        ({"amount": "NaN"}, "monto en números"),
        ({"amount": "60.001"}, "dos decimales"),
        ({"amount": "100.01"}, "el saldo es US$100.00"),
        ({"payment_method": "bitcoin"}, "Opción inválida"),
        ({"payment_date": "2999-01-01"}, "futuro"),
        ({"payment_date": "1900-01-01"}, "anterior a la apertura"),
        ({"payment_date": "ayer"}, "No es una fecha válida"),
        ({"idempotency_key": ""}, "recargue la página"),
        ({"idempotency_key": "no-es-uuid"}, "recargue la página"),
        ({"payment_reference": "x" * 256}, "Máximo 255"),
        ({"payment_reference": "ref\x1b"}, "caracteres no permitidos"),
    ],
)
def test_bad_payments_change_nothing(staff, org_a, account, overrides, message):
    _charge(staff, account, "100.00")
    response = _payment(staff, account, **overrides)
    assert response.status_code == 422 and message in response.text
    assert _ledger(org_a, account) == Decimal("100.00")


def test_double_submitted_payment_posts_once_and_a_reused_key_is_refused(staff, org_a, account):
    _charge(staff, account, "100.00")
    key = str(uuid.uuid4())
    assert "registrado." in _payment(staff, account, idempotency_key=key).text
    assert "ya estaba registrado" in _payment(staff, account, idempotency_key=key).text
    refused = _payment(staff, account, idempotency_key=key, amount="10.00")
    assert refused.status_code == 422 and "otros datos" in refused.text
    assert _ledger(org_a, account) == Decimal("60.00")


def test_reversal_needs_an_approver_and_a_reason(login_as, staff, org_a, account):
    _charge(staff, account, "100.00")
    _payment(staff, account)
    page = login_as("credit_approver").get(f"/credit/accounts/{account.credit_account_id}").text
    import re

    payment_id = re.search(r"/credit/payments/([0-9a-f-]{36})/reverse", page).group(1)
    assert (
        staff.post(f"/credit/payments/{payment_id}/reverse", {"reversal_reason": "x"}).status_code
        == 403
    )
    approver = login_as("credit_approver")
    approver.get(f"/credit/accounts/{account.credit_account_id}")
    approver.post(f"/credit/payments/{payment_id}/reverse", {"reversal_reason": ""})
    assert _ledger(org_a, account) == Decimal("60.00")
    approver.post(f"/credit/payments/{payment_id}/reverse", {"reversal_reason": "Contracargo"})
    assert _ledger(org_a, account) == Decimal("100.00")


def test_another_organizations_usage_and_payment_ids_are_404(login_as, org_a, org_b):
    customer = factories.customer_create(org_b.organization_id)
    theirs = factories.credit_account_create(org_b.organization_id, customer.customer_id)
    client = login_as("credit_staff", org_b)
    client.get(f"/credit/accounts/{theirs.credit_account_id}")
    _charge(client, theirs, "20.00")
    _payment(client, theirs, amount="5.00")
    page = (
        login_as("credit_approver", org_b).get(f"/credit/accounts/{theirs.credit_account_id}").text
    )
    import re

    usage_id = re.search(
        r"/credit/usages/([0-9a-f-]{36})/cancel",
        client.get(f"/credit/accounts/{theirs.credit_account_id}").text,
    )
    payment_id = re.search(r"/credit/payments/([0-9a-f-]{36})/reverse", page).group(1)
    mine = login_as("credit_staff")
    mine.get("/customers/")
    approver = login_as("credit_approver")
    approver.get("/customers/")
    if usage_id:
        assert mine.post(f"/credit/usages/{usage_id.group(1)}/cancel").status_code == 404
    assert (
        approver.post(
            f"/credit/payments/{payment_id}/reverse", {"reversal_reason": "ajeno"}
        ).status_code
        == 404
    )
    assert _ledger(org_b, theirs) == Decimal("15.00")


def test_the_charge_form_refuses_another_customers_order_and_suggests_the_customers(
    staff, org_a, account
):
    other = factories.customer_create(org_a.organization_id)
    theirs = factories.order_number(org_a.organization_id, other.customer_id)
    refused = _charge(staff, account, "10.00", theirs)
    assert refused.status_code == 422 and f"La orden {theirs} es de otro cliente." in refused.text
    assert _ledger(org_a, account) == 0
    cancelled = factories.order_number(
        org_a.organization_id, account.customer_id, status="cancelled"
    )
    assert "está anulada" in _charge(staff, account, "10.00", cancelled).text
    mine = factories.order_number(org_a.organization_id, account.customer_id, total="45.10")
    options = staff.get(
        f"/credit/accounts/{account.credit_account_id}/orders?order_number={mine[:-1].lower()}",
        headers=HTMX,
    ).text
    assert f'value="{mine}"' in options and "US$45.10" in options
    assert theirs not in options and cancelled not in options
    charged = _charge(staff, account, "10.00", mine.lower())
    assert charged.status_code == 200 and "Cargo registrado a" in charged.text
    assert (
        f"orden {mine}" in staff.get(f"/credit/accounts/{account.credit_account_id}/statement").text
    )
    assert (
        f'value="{mine}"'
        not in staff.get(
            f"/credit/accounts/{account.credit_account_id}/orders?order_number=F", headers=HTMX
        ).text
    )  # charged: no longer suggested


def test_a_refused_payment_without_javascript_redirects_to_the_account_with_its_errors(
    staff, org_a, account
):
    """Post/Redirect/Get: the account's URL shows the refused form once; Back never re-posts."""
    url = f"/credit/accounts/{account.credit_account_id}"
    response = staff.post(
        f"{url}/payments",
        {
            "amount": "-5",
            "payment_method": "card",
            "payment_date": clock.today().isoformat(),
            "idempotency_key": str(uuid.uuid4()),
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == url
    kept = staff.get(url)
    assert kept.status_code == 422 and 'value="-5"' in kept.text and "field-error" in kept.text
    assert staff.get(url).status_code == 200 and 'value="-5"' not in staff.get(url).text
    assert _ledger(org_a, account) == 0


def test_a_refused_api_key_form_without_javascript_redirects_to_its_page(login_as):
    admin = login_as("org_admin")
    admin.get("/settings/api-keys/")
    response = admin.post("/settings/api-keys/", {"name": "", "scopes": []})
    assert response.status_code == 303 and response.headers["Location"] == "/settings/api-keys/"
    kept = admin.get("/settings/api-keys/")
    assert kept.status_code == 422 and "field-error" in kept.text
