"""The daily overdue pass on a fixed clock: marks, holds, suspends, and is idempotent."""

import logging
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from rq import SimpleWorker

from portal import clock
from portal.credit.jobs import overdue_sweep
from portal.credit.models import CreditUsage
from portal.credit.services import CreditError, account_get, usage_charge, usages_mark_overdue
from portal.extensions import db
from portal.tasks import queue
from tests import factories


@pytest.fixture
def charged(org_a):
    """An account with a US$100 charge due in 30 days (term 30)."""
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    with factories.scoped(org_a.organization_id):
        usage, _ = usage_charge(
            account_id=account.credit_account_id,
            order_id=uuid.uuid4(),
            amount=Decimal("100"),
            actor=None,
        )
        db.session.commit()
        due = usage.due_date
    return org_a, account, due


def _run(org, today, days=30):
    with factories.scoped(org.organization_id):
        result = usages_mark_overdue(today=today, suspend_after_days=days)
        db.session.commit()
        return result


def _state(org, account):
    with factories.scoped(org.organization_id):
        status = account_get(account.credit_account_id).status
        usage = db.session.scalar(sa.select(CreditUsage.status))
        return status, usage


def test_not_yet_due_is_left_alone(charged):
    org, account, due = charged
    assert _run(org, due) == {"marked_overdue": 0, "suspended": 0}
    assert _state(org, account) == ("approved", "pending")


def test_past_due_becomes_overdue_and_holds_new_charges_idempotently(charged):
    org, account, due = charged
    assert _run(org, due + timedelta(days=1)) == {"marked_overdue": 1, "suspended": 0}
    assert _run(org, due + timedelta(days=1)) == {"marked_overdue": 0, "suspended": 0}
    assert _state(org, account) == ("approved", "overdue")
    with (
        pytest.raises(CreditError, match="Retención por mora"),
        factories.scoped(org.organization_id),
    ):
        usage_charge(
            account_id=account.credit_account_id,
            order_id=uuid.uuid4(),
            amount=Decimal("1"),
            actor=None,
        )


def test_overdue_past_the_limit_suspends_with_system_actor_once(charged):
    org, account, due = charged
    _run(org, due + timedelta(days=1))
    assert _run(org, due + timedelta(days=30)) == {"marked_overdue": 0, "suspended": 0}
    assert _run(org, due + timedelta(days=31)) == {"marked_overdue": 0, "suspended": 1}
    assert _run(org, due + timedelta(days=31)) == {"marked_overdue": 0, "suspended": 0}
    assert _state(org, account) == ("suspended", "overdue")
    entry = factories.audit_entries(org.organization_id, account.credit_account_id)[-1]
    assert entry.action == "credit.suspended" and entry.actor_label == "system"
    assert "Suspensión automática" in entry.after["suspension_reason"]


def test_the_scheduled_sweep_runs_each_organization_in_its_own_scope(
    app, charged, org_b, monkeypatch
):
    org, account, due = charged
    other_customer = factories.customer_create(org_b.organization_id)
    other = factories.credit_account_create(
        org_b.organization_id, other_customer.customer_id, payment_term_days=60
    )
    with factories.scoped(org_b.organization_id):
        usage_charge(
            account_id=other.credit_account_id,
            order_id=uuid.uuid4(),
            amount=Decimal("5"),
            actor=None,
        )
        db.session.commit()
    monkeypatch.setattr(clock, "today", lambda: due + timedelta(days=40))
    with app.app_context():
        assert overdue_sweep() >= 2
        portal_queue = queue()
        SimpleWorker([portal_queue], connection=portal_queue.connection).work(
            burst=True, logging_level=logging.WARNING
        )
    assert _state(org, account) == ("suspended", "overdue")
    # Organization B's charge is only 10 days late: overdue there, not suspended.
    assert _state(org_b, other) == ("approved", "overdue")
