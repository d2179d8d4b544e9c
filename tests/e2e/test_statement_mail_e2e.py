"""An approver e-mails an account statement from its page in Chromium; a real worker renders the
PDF and delivers it to the SMTP sink."""

import io
import time
import uuid
from decimal import Decimal

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from portal.credit.services import usage_charge
from portal.extensions import db
from portal.mail.sink import sink_messages
from tests import factories
from tests.e2e.test_credit_e2e import _login


@pytest.fixture
def mail_worker(smtp_url, monkeypatch, request):
    """A real `python worker.py` whose SMTP_URL is the sink's."""
    monkeypatch.setenv("SMTP_URL", smtp_url)
    return request.getfixturevalue("worker_process")


def _caught(directory, *, seconds: float = 30) -> list:
    deadline = time.monotonic() + seconds
    while not (messages := sink_messages(directory)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return messages


def test_approver_emails_the_statement_and_the_customer_gets_the_pdf(
    page, org_a, sink, mail_worker
):
    customer = factories.customer_create(
        org_a.organization_id, first_name="Rosa", last_name="Atencio", email="rosa@correo.pa"
    )
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    with factories.scoped(org_a.organization_id):
        usage_charge(
            account_id=account.credit_account_id,
            order_id=uuid.uuid4(),
            amount=Decimal("245.00"),
            actor=org_a.users["credit_staff"],
        )
        db.session.commit()
    _login(page, org_a.users["credit_approver"])
    page.goto(f"/credit/accounts/{account.credit_account_id}")
    page.get_by_role("link", name="Estado de cuenta").click()
    expect(page.locator("#closing-balance")).to_have_text("US$245.00")
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Enviar por correo").click()
    expect(page.locator("#statement-mail-message")).to_have_text(
        "Estado de cuenta de Rosa Atencio enviado a rosa@correo.pa."
    )
    assert page.evaluate("window.notReloaded") is True

    (message,) = _caught(sink)
    assert message["To"] == "rosa@correo.pa" and "Tienda A" in message["Subject"]
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    reader = PdfReader(io.BytesIO(attachment.get_content()))
    text = " ".join(" ".join(pdf_page.extract_text() for pdf_page in reader.pages).split())
    assert "Rosa Atencio" in text and "US$245.00" in text
