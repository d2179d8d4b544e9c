"""RFM segments: hand-computed scores and segments for a fixture covering ties and every rule."""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import clock
from portal.events.models import Purchase
from portal.extensions import db
from portal.segments.models import CustomerSegment
from portal.segments.services import segments_recompute
from tests import factories

TODAY = date(2026, 11, 28)
# Eleven buyers, so percent_rank() = (position - 1) / 10 and score = min(5, 1 + floor(5 * it)):
# position 1-2 -> 1, 3-4 -> 2, 5-6 -> 3, 7-8 -> 4, 9-11 -> 5. A tie group takes the lowest
# position of the group. Ties on every axis (value: customers at position):
#   recency, days ago (oldest first): 500 L 1 | 400 J 2 | 200 H I 3 | 60 F G 5 | 30 E 7
#                                     | 5 C D 8 | 1 A B 10
#   frequency, orders: 1 C D L 1 | 2 I J 4 | 3 F G 6 | 6 E H 8 | 10 A B 10
#   value, US$: 50 C D J L 1 | 300 E F G 5 | 600 H 8 | 1000 A B 9 | 2000 I 11
# One-time buyers (C, D, L) are more than a fifth of the buyers and still get F = 1, so recent
# ones are "new". A=B (B buys 5 hours earlier, the same day in Panama), C=D and F=G are identical
# histories. VIP top 5 %: only I has no buyer above it.
# name: (days since last purchase, orders, lifetime value, expected R, F, M, segment, VIP, at risk)
FIXTURE = {
    "A": (1, 10, "1000", 5, 5, 5, "champions", True, False),
    "B": (1, 10, "1000", 5, 5, 5, "champions", True, False),
    "C": (5, 1, "50", 4, 1, 1, "new", False, False),
    "D": (5, 1, "50", 4, 1, 1, "new", False, False),
    "E": (30, 6, "300", 4, 4, 3, "loyal", False, False),
    "F": (60, 3, "300", 3, 3, 3, "potential_loyalist", False, False),
    "G": (60, 3, "300", 3, 3, 3, "potential_loyalist", False, False),
    "H": (200, 6, "600", 2, 4, 4, "at_risk", False, True),
    "I": (200, 2, "2000", 2, 2, 5, "lost", True, True),  # lost with M>=4; top LTV is VIP
    "J": (400, 2, "50", 1, 2, 1, "lost", False, False),
    "L": (500, 1, "50", 1, 1, 1, "lost", False, False),  # an old one-time buyer
}


def _seed(org, *, id_order=1) -> dict[str, uuid.UUID]:
    ids = {}
    for position, name in enumerate([*FIXTURE, "K"][::id_order], start=1):
        customer_id = uuid.UUID(int=position)  # the id order must never change a score
        factories.customer_create(org.organization_id, customer_id=customer_id, first_name=name)
        ids[name] = customer_id
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    with factories.scoped(org.organization_id):
        for name, (days, orders, value, *_) in FIXTURE.items():
            each = Decimal(value) / orders
            for k in range(orders):
                when = now - timedelta(days=days + k, hours=5 if name == "B" else 0)
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
        assert segments_recompute().written == 12
        db.session.commit()
    segments = _segments(org_a)
    for name, (days, orders, value, r, f, m, code, vip, at_risk) in FIXTURE.items():
        row = segments[ids[name]]
        assert (row.rfm_recency, row.rfm_frequency, row.rfm_monetary) == (r, f, m), name
        assert row.segment_code == code, name
        assert (row.is_vip, row.is_at_risk) == (vip, at_risk), name
        assert row.total_orders == orders and row.rfm_score == r + f + m
        assert row.lifetime_value == Decimal(value), name
        with clock.pinned(TODAY):
            assert row.days_since_last_purchase == days, name
    nobody = segments[ids["K"]]
    assert nobody.segment_code == "new" and nobody.rfm_recency is None and nobody.total_orders == 0
    assert _segments(org_b) == {}  # organization B was not touched
    assert other


@pytest.mark.parametrize("id_order", [1, -1])
def test_equal_histories_get_equal_scores_whatever_their_ids(org_a, id_order):
    ids = _seed(org_a, id_order=id_order)
    with factories.scoped(org_a.organization_id):
        segments_recompute()
        db.session.commit()
    segments = _segments(org_a)
    by_name = {
        name: (row.rfm_recency, row.rfm_frequency, row.rfm_monetary, row.segment_code)
        for name, row in ((name, segments[ids[name]]) for name in FIXTURE)
    }
    assert by_name["A"] == by_name["B"] and by_name["C"] == by_name["D"]
    assert by_name["F"] == by_name["G"]
    expected = {name: (r, f, m, code) for name, (_, _, _, r, f, m, code, *_) in FIXTURE.items()}
    assert by_name == expected


def test_recompute_is_deterministic_and_idempotent(org_a):
    ids = _seed(org_a)
    results = []
    for _ in range(2):
        with factories.scoped(org_a.organization_id):
            segments_recompute()
            db.session.commit()
        results.append({k: (v.segment_code, v.rfm_score) for k, v in _segments(org_a).items()})
    assert results[0] == results[1] and len(results[0]) == len(ids)


def test_segments_page_shows_distribution_and_drills_down(login_as, org_a):
    _seed(org_a)
    with factories.scoped(org_a.organization_id):
        segments_recompute()
        db.session.commit()
    page = login_as("branch_staff").get("/segments/").text
    assert 'id="segment-champions"' in page and "<svg" in page
    assert "/customers/?segment=champions" in page
    assert "Recalcular ahora" not in page  # only org admins start a recompute
    drill = login_as("branch_staff").get("/customers/?segment=champions").text
    assert drill.count('class="customer-row') == 2
