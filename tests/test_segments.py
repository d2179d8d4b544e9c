"""RFM segments: hand-computed scores and segments for a fixture covering ties and every rule."""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal.customers.models import CustomerSegment
from portal.events.models import Purchase
from portal.extensions import db
from portal.segments.services import segments_recompute
from tests import factories

TODAY = date(2026, 11, 28)
# name: (days since last purchase, orders, lifetime value, expected R, F, M, segment, VIP, at risk)
FIXTURE = {
    "A": (1, 10, "1000", 5, 5, 5, "champions", True, False),
    "B": (2, 9, "900", 5, 4, 4, "champions", True, False),
    "C": (3, 1, "50", 4, 1, 1, "new", False, False),
    "D": (4, 8, "800", 4, 4, 4, "champions", True, False),
    "E": (30, 12, "420", 3, 5, 2, "loyal", False, False),
    "F": (75, 5, "500", 2, 2, 2, "lost", False, False),  # tied with G on recency, smaller id
    "G": (75, 3, "300", 3, 2, 1, "potential_loyalist", False, False),
    "H": (100, 6, "600", 2, 3, 3, "at_risk", False, True),
    "I": (200, 7, "700", 1, 3, 3, "at_risk", False, True),
    "J": (300, 2, "2000", 1, 1, 5, "lost", True, True),  # lost with M>=4; top LTV is VIP
}


def _seed(org) -> dict[str, uuid.UUID]:
    ids = {}
    for position, name in enumerate([*FIXTURE, "K"], start=1):
        customer_id = uuid.UUID(int=position)  # known order for the tie-break
        factories.customer_create(org.organization_id, customer_id=customer_id, first_name=name)
        ids[name] = customer_id
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    with factories.scoped(org.organization_id):
        for name, (days, orders, value, *_) in FIXTURE.items():
            each = Decimal(value) / orders
            for k in range(orders):
                when = now - timedelta(days=days + k)
                db.session.add(
                    Purchase(
                        order_id=uuid.uuid4(),
                        customer_id=ids[name],
                        total=each.quantize(Decimal("0.01")),
                        completed_at=when,
                        status="completed",
                        event_occurred_at=when,
                    )
                )
        db.session.add(
            Purchase(  # a cancelled order never counts
                order_id=uuid.uuid4(),
                customer_id=ids["K"],
                total=Decimal("999"),
                completed_at=now,
                status="cancelled",
                event_occurred_at=now,
            )
        )
        db.session.commit()
    return ids


def _segments(org) -> dict[uuid.UUID, CustomerSegment]:
    with factories.scoped(org.organization_id):
        rows = {s.customer_id: s for s in db.session.scalars(sa.select(CustomerSegment))}
        for row in rows.values():
            db.session.expunge(row)
        return rows


def test_rfm_scores_and_segments_match_the_hand_computation(org_a, org_b):
    ids = _seed(org_a)
    other = factories.customer_create(org_b.organization_id)
    with factories.scoped(org_a.organization_id):
        assert segments_recompute(today=TODAY) == 11
        db.session.commit()
    segments = _segments(org_a)
    for name, (days, orders, value, r, f, m, code, vip, at_risk) in FIXTURE.items():
        row = segments[ids[name]]
        assert (row.rfm_recency, row.rfm_frequency, row.rfm_monetary) == (r, f, m), name
        assert row.segment_code == code, name
        assert (row.is_vip, row.is_at_risk) == (vip, at_risk), name
        assert row.total_orders == orders and row.rfm_score == r + f + m
        assert abs(row.lifetime_value - Decimal(value)) <= Decimal("0.10"), name
        assert row.days_since_last_purchase == days, name
    nobody = segments[ids["K"]]
    assert nobody.segment_code == "new" and nobody.rfm_recency is None and nobody.total_orders == 0
    assert _segments(org_b) == {}  # organization B was not touched
    assert other


def test_recompute_is_deterministic_and_idempotent(org_a):
    ids = _seed(org_a)
    results = []
    for _ in range(2):
        with factories.scoped(org_a.organization_id):
            segments_recompute(today=TODAY)
            db.session.commit()
        results.append({k: (v.segment_code, v.rfm_score) for k, v in _segments(org_a).items()})
    assert results[0] == results[1] and len(results[0]) == len(ids)


def test_segments_page_shows_distribution_and_drills_down(login_as, org_a):
    _seed(org_a)
    with factories.scoped(org_a.organization_id):
        segments_recompute(today=TODAY)
        db.session.commit()
    page = login_as("branch_staff").get("/segments/").text
    assert 'id="segment-champions"' in page and "<svg" in page
    assert "/customers/?segment=champions" in page
    assert "Recalcular ahora" not in page  # only org admins start a recompute
    drill = login_as("branch_staff").get("/customers/?segment=champions").text
    assert drill.count('class="customer-row') == 3
