"""What staff print and read on the account pages: the statement's header, unique field ids."""

import re
from collections import Counter

from portal.settings.services import organization_settings_update
from tests import factories


def test_the_printed_statement_has_the_organization_period_and_customer_address(login_as, org_a):
    customer = factories.customer_create(
        org_a.organization_id,
        customer_type="b2b",
        company_name="Abarrotes La Chorrera, S.A.",
        first_name="Itzel",
        last_name="Ábrego",
    )
    factories.address_create(
        org_a.organization_id, customer.customer_id, address_type="shipping", is_default=True
    )
    factories.address_create(
        org_a.organization_id,
        customer.customer_id,
        address_type="billing",
        address_line1="Vía España, Torre Delta, piso 4",
        city="Ciudad de Panamá",
    )
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    with factories.scoped(org_a.organization_id):
        organization_settings_update(
            max_credit_limit=50_000,
            approval_level=10_000,
            address="Calle 50, Edificio Global, Ciudad de Panamá",
            actor=org_a.users["org_admin"],
        )
    client = login_as("credit_staff")
    url = f"/credit/accounts/{account.credit_account_id}/statement"
    page = client.get(url).text
    head = page.split('id="statement-head"')[1].split("</header>")[0]
    assert 'id="organization-name">Tienda A<' in head
    assert "Calle 50, Edificio Global, Ciudad de Panamá" in head
    assert "Fecha de emisión" in head and "Desde la apertura al" in head
    assert "Vía España, Torre Delta, piso 4" in page  # the billing address, not the shipping one
    assert "Abarrotes La Chorrera, S.A. (contacto: Itzel Ábrego)" in page
    period = client.get(f"{url}?start=2026-11-01&end=2026-11-30").text
    assert "Del 1 nov 2026 al 30 nov 2026" in period


def test_a_suspended_account_page_has_no_duplicate_ids(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(
        org_a.organization_id, customer.customer_id, status="suspended"
    )
    page = login_as("credit_approver").get(f"/credit/accounts/{account.credit_account_id}").text
    ids = Counter(re.findall(r'\sid="([^"]+)"', page))
    assert [name for name, count in ids.items() if count > 1] == []
    assert 'for="reactivation_notes"' in page and 'for="limit_notes"' in page
