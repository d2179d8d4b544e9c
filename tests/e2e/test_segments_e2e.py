"""An org admin recomputes segments and sees the progress bar reach 100 % and the chart update."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from playwright.sync_api import expect

from portal.events.models import Purchase
from portal.extensions import db
from tests import factories


def test_admin_recomputes_segments_with_a_live_progress_bar(page, org_a, worker_process):
    now = datetime.now(UTC)
    customers = [factories.customer_create(org_a.organization_id) for _ in range(10)]
    with factories.scoped(org_a.organization_id):
        for position, customer in enumerate(customers):
            for k in range(10 - position):  # the most recent buyers buy most: champions
                db.session.add(
                    Purchase(
                        order_id=uuid.uuid4(),
                        customer_id=customer.customer_id,
                        total=Decimal("50"),
                        completed_at=now - timedelta(days=position * 10 + k),
                        status="completed",
                        event_occurred_at=now,
                    )
                )
        db.session.commit()
    page.goto("/login")
    page.get_by_label("Correo electrónico").fill(org_a.users["org_admin"].email)
    page.get_by_label("Contraseña").fill(factories.TEST_PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    page.get_by_role("link", name="Segmentos").click()
    expect(page.get_by_text("Aún no se han calculado segmentos.")).to_be_visible()
    expect(page.locator("#segment-champions td.num").first).to_have_text("0")
    page.get_by_role("button", name="Recalcular ahora").click()
    expect(page.locator("#recompute-bar")).to_be_visible()
    expect(page.locator("#recompute-bar")).to_have_attribute("value", "100", timeout=30_000)
    expect(page.get_by_text("Listo · 100 %")).to_be_visible()
    expect(page.locator("#segment-champions td.num").first).not_to_have_text("0", timeout=10_000)
    expect(page.get_by_text(re.compile("^Calculado"))).to_be_visible()
