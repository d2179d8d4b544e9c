"""Payment receipts: numbered per organization, printable and as PDF from the same template."""

import io
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from portal import clock
from portal.credit.models import CreditPayment
from portal.credit.services import payment_record, usage_charge
from portal.extensions import db
from portal.money import amount_in_words
from tests import factories


def _pay(org, account_id, amount, reference=None):
    with factories.scoped(org.organization_id):
        payment, _ = payment_record(
            account_id=account_id,
            amount=Decimal(amount),
            method="transfer",
            reference=reference,
            payment_date=clock.today(),
            key=uuid.uuid4(),
            actor=org.users["credit_staff"],
        )
        db.session.commit()
        return payment.payment_id


@pytest.fixture
def paid(org_a):
    """An account with two charges (orders PED-…) and a payment of US$120.50 over both."""
    customer = factories.customer_create(
        org_a.organization_id, first_name="Marta", last_name="Quintero", email="marta@correo.pa"
    )
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    with factories.scoped(org_a.organization_id):
        for amount in ("100.00", "50.00"):
            usage_charge(
                account_id=account.credit_account_id,
                order_id=uuid.uuid4(),
                amount=Decimal(amount),
                actor=org_a.users["credit_staff"],
            )
            db.session.commit()
    payment_id = _pay(org_a, account.credit_account_id, "120.50", reference="TRF-88")
    return org_a, account, payment_id


def _numbers(org):
    with factories.scoped(org.organization_id):
        return db.session.execute(
            sa.select(CreditPayment.kind, CreditPayment.receipt_number).order_by(
                CreditPayment.created_at
            )
        ).all()


def test_payments_are_numbered_per_organization_in_order(paid, org_b):
    org_a, account, _ = paid
    _pay(org_a, account.credit_account_id, "10.00")
    other = factories.customer_create(org_b.organization_id)
    other_account = factories.credit_account_create(org_b.organization_id, other.customer_id)
    with factories.scoped(org_b.organization_id):
        usage_charge(
            account_id=other_account.credit_account_id,
            order_id=uuid.uuid4(),
            amount=Decimal("40.00"),
            actor=org_b.users["credit_staff"],
        )
        db.session.commit()
    _pay(org_b, other_account.credit_account_id, "40.00")
    assert _numbers(org_a) == [("payment", 1), ("payment", 2)]
    assert _numbers(org_b) == [("payment", 1)]


def test_the_receipt_names_the_payment_in_figures_and_words_and_what_it_paid(paid, login_as):
    _, account, payment_id = paid
    client = login_as("credit_staff")
    ledger = client.get(f"/credit/accounts/{account.credit_account_id}").text
    assert "Recibo N.º 000001" in ledger
    page = client.get(f"/credit/payments/{payment_id}/receipt")
    assert page.status_code == 200
    text = page.text
    assert "Recibo de pago N.º 000001" in text and "Marta Quintero" in text
    assert "US$120.50" in text and "ciento veinte dólares con cincuenta centavos" in text
    assert "Transferencia" in text and "TRF-88" in text
    assert "US$100.00" in text and "US$20.50" in text  # the oldest charge first, then the next


def test_the_receipt_pdf_has_the_same_figures(paid, login_as):
    _, _, payment_id = paid
    response = login_as("credit_approver").get(f"/credit/payments/{payment_id}/receipt?format=pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert 'filename="recibo-000001.pdf"' in response.headers["Content-Disposition"]
    text = _pdf_text(response)
    assert "Recibo de pago N.º 000001" in text and "Marta Quintero" in text
    assert "US$120.50" in text and "ciento veinte dólares con cincuenta centavos" in text
    assert "US$100.00" in text and "US$20.50" in text


def test_another_organizations_payment_and_bad_ids_are_not_found(paid, login_as, org_b):
    _, _, payment_id = paid
    outsider = login_as("credit_staff", org_b)
    assert outsider.get(f"/credit/payments/{payment_id}/receipt").status_code == 404
    assert outsider.get(f"/credit/payments/{payment_id}/receipt?format=pdf").status_code == 404
    client = login_as("credit_staff")
    assert client.get(f"/credit/payments/{uuid.uuid4()}/receipt").status_code == 404
    assert client.get("/credit/payments/not-a-uuid/receipt").status_code == 404
    assert login_as("branch_staff").get(f"/credit/payments/{payment_id}/receipt").status_code == 403


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("1.00", "un dólar con cero centavos"),
        ("21.00", "veintiún dólares con cero centavos"),
        ("1000000.01", "un millón de dólares con un centavo"),
        ("2500000.00", "dos millones quinientos mil dólares con cero centavos"),
    ],
)
def test_amounts_in_words(amount, words):
    assert amount_in_words(Decimal(amount)) == words


def _pdf_text(response) -> str:
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    return " ".join(text.split())


def test_the_statement_pdf_has_the_header_lines_balances_and_aging(paid, login_as):
    _, account, _ = paid
    client = login_as("credit_staff")
    page = client.get(f"/credit/accounts/{account.credit_account_id}/statement")
    assert 'id="statement-aging"' in page.text and "Descargar PDF" in page.text
    response = client.get(f"/credit/accounts/{account.credit_account_id}/statement?format=pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = _pdf_text(response)
    assert "Estado de cuenta" in text and "Marta Quintero" in text
    assert "Fecha de emisión" in text and "Desde la apertura" in text
    assert "Saldo inicial" in text and "Saldo final" in text
    assert "US$150.00" in text and "US$120.50" in text and "US$29.50" in text
    assert "Antigüedad de lo adeudado" in text and "Por vencer" in text


def test_another_organizations_statement_pdf_is_not_found(paid, login_as, org_b):
    _, account, _ = paid
    outsider = login_as("credit_staff", org_b)
    url = f"/credit/accounts/{account.credit_account_id}/statement?format=pdf"
    assert outsider.get(url).status_code == 404
