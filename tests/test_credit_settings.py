"""The organization's maximum credit limit: set by org admins, audited, respected everywhere."""

import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.credit.services import (
    CreditError,
    account_for_customer,
    account_get,
    credit_approve,
    credit_request_pending,
)
from portal.extensions import db
from portal.settings.models import OrganizationSettings
from portal.settings.services import organization_settings_get, organization_settings_update
from tests import factories

HTMX = {"HX-Request": "true"}


def _maximum(org) -> Decimal:
    with factories.scoped(org.organization_id):
        return organization_settings_get().max_credit_limit


def _set_maximum(org, amount: str, level: str = "10000") -> None:
    with factories.scoped(org.organization_id):
        organization_settings_update(
            max_credit_limit=Decimal(amount),
            approval_level=Decimal(level),
            address=None,
            actor=org.users["org_admin"],
        )


def test_the_default_maximum_is_fifty_thousand_and_admins_change_it_audited(login_as, org_a, org_b):
    assert _maximum(org_a) == Decimal("50000.00")
    admin = login_as("org_admin")
    page = admin.get("/settings/")
    assert page.status_code == 200 and 'value="50000.00"' in page.text
    assert 'href="/settings/"' in page.text  # linked from the navigation
    saved = admin.post(
        "/settings/", {"max_credit_limit": "25,000.00", "approval_level": "10,000.00"}
    )
    assert saved.status_code == 303
    assert "Configuración guardada." in admin.get("/settings/").text
    assert _maximum(org_a) == Decimal("25000.00")
    assert _maximum(org_b) == Decimal("50000.00")  # per organization
    [entry] = factories.audit_entries(org_a.organization_id, org_a.organization_id)
    assert entry.action == "settings.updated"
    assert entry.actor_id == org_a.users["org_admin"].staff_user_id
    late_fees = {"mode": "off", "amount": None, "percent": None, "grace_days": 0, "cap": None}
    unchanged = {"approval_level": "10000.00", "address": None} | {
        f"late_fee_{key}": value for key, value in late_fees.items()
    }
    assert entry.before == {"max_credit_limit": "50000.00"} | unchanged
    assert entry.after == {"max_credit_limit": "25000.00"} | unchanged


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "Indique el límite máximo"),
        ("0", "mayor que cero"),
        ("-5", "mayor que cero"),
        ("abc", "monto en números"),
        ("\u0661\u0662\u0663", "monto en números"),
        ("\uff11\uff10\uff10", "monto en números"),
        ("1e6", "monto en números"),
        ("99999999999999", "demasiado grande"),
    ],
)
def test_bad_maximum_is_refused_and_changes_nothing(login_as, org_a, value, message):
    admin = login_as("org_admin")
    admin.get("/settings/")
    response = admin.post(
        "/settings/",
        {"max_credit_limit": value, "approval_level": "10000"},
        follow_redirects=True,
    )
    assert response.status_code == 422 and message in response.text
    assert _maximum(org_a) == Decimal("50000.00")
    assert factories.audit_entries(org_a.organization_id, org_a.organization_id) == []


@pytest.mark.parametrize("role", ["branch_staff", "credit_staff", "credit_approver"])
def test_only_org_admins_see_or_change_settings(login_as, org_a, role):
    client = login_as(role)
    client.get("/customers/")
    assert 'href="/settings/"' not in client.get("/customers/").text
    assert client.get("/settings/").status_code == 403
    assert client.post("/settings/", {"max_credit_limit": "1"}).status_code == 403
    assert _maximum(org_a) == Decimal("50000.00")


def test_a_request_above_the_maximum_is_refused_in_spanish(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id)
    staff = login_as("branch_staff")
    url = f"/credit/request/{customer.customer_id}"
    staff.get(url)
    data = {"requested_limit": "1000000000", "requested_term_days": "30", "request_notes": "Mucho"}
    response = staff.post(url, data, follow_redirects=True)
    assert response.status_code == 422
    assert "supera el máximo de la organización (US$50,000.00)" in response.text
    with factories.scoped(org_a.organization_id):
        assert account_for_customer(customer.customer_id) is None
    assert staff.post(url, data | {"requested_limit": "50,000.00"}).status_code == 302


def test_an_approval_above_the_maximum_is_refused(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(
        org_a.organization_id, customer.customer_id, status="pending", credit_limit=Decimal(0)
    )
    _set_maximum(org_a, "50000", level="50000")  # the approver alone may decide up to it
    with factories.scoped(org_a.organization_id):
        request_id = credit_request_pending(account.credit_account_id).credit_request_id
    approver = login_as("credit_approver")
    approver.get("/credit/queue")
    url = f"/credit/requests/{request_id}/approve"
    refused = approver.post(url, {"credit_limit": "50000.01"}, headers=HTMX)
    assert refused.status_code == 422 and "supera el máximo" in refused.text
    with factories.scoped(org_a.organization_id):
        assert account_get(account.credit_account_id).status == "pending"
    assert approver.post(url, {"credit_limit": "50000"}, headers=HTMX).status_code == 200


def test_an_increase_above_the_maximum_is_refused_at_request_and_at_approval(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    page = f"/credit/accounts/{account.credit_account_id}"
    staff = login_as("credit_staff")
    staff.get(page)
    too_much = staff.post(
        f"{page}/increase", {"requested_limit": "60000", "reason": "Mucho"}, headers=HTMX
    )
    assert too_much.status_code == 422 and "supera el máximo" in too_much.text
    assert (
        staff.post(f"{page}/increase", {"requested_limit": "40000", "reason": "Local"}).status_code
        == 303
    )
    _set_maximum(org_a, "30000")  # lowered while the request waits
    with factories.scoped(org_a.organization_id):
        request_id = credit_request_pending(account.credit_account_id).credit_request_id
    approver = login_as("credit_approver")
    approver.get("/credit/queue")
    refused = approver.post(f"/credit/requests/{request_id}/approve", {}, headers=HTMX)
    assert refused.status_code == 422 and "(US$30,000.00)" in refused.text
    with factories.scoped(org_a.organization_id):
        assert account_get(account.credit_account_id).credit_limit == Decimal("1000.00")


def test_an_approval_racing_a_lower_maximum_never_commits_above_it(org_a):
    """The approval reads the maximum under a share lock: the admin's change waits or wins."""
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(
        org_a.organization_id, customer.customer_id, status="pending", credit_limit=Decimal(0)
    )
    _set_maximum(org_a, "50000")
    with factories.scoped(org_a.organization_id):
        request_id = credit_request_pending(account.credit_account_id).credit_request_id
    admin_holds_lock = threading.Event()
    outcome = {}

    def admin_lowers():
        with factories.scoped(org_a.organization_id):
            settings = organization_settings_get(lock="update")
            admin_holds_lock.set()
            threading.Event().wait(0.5)  # the approval arrives while the change is uncommitted
            settings.max_credit_limit = Decimal("20000")
            db.session.commit()

    def approver_decides():
        admin_holds_lock.wait(10)
        with factories.scoped(org_a.organization_id):
            try:
                credit_approve(
                    request_id=request_id,
                    approver=org_a.users["credit_approver"],
                    limit=Decimal("40000"),
                    term_days=None,
                    notes=None,
                )
                outcome["approval"] = "approved"
            except CreditError as error:
                outcome["approval"] = str(error)

    threads = [threading.Thread(target=admin_lowers), threading.Thread(target=approver_decides)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert "supera el máximo de la organización (US$20,000.00)" in outcome["approval"]
    with factories.scoped(org_a.organization_id):
        assert account_get(account.credit_account_id).status == "pending"
        assert db.session.scalar(sa.select(OrganizationSettings.max_credit_limit)) == Decimal(
            "20000.00"
        )
