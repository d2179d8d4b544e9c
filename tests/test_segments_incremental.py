"""Purchase summaries kept by the order events, and the incremental, change-only recompute."""

import random
import threading
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal import clock
from portal.events.models import Purchase
from portal.extensions import db
from portal.segments.models import SegmentRun
from portal.segments.services import segments_recompute
from tests import factories
from tests.test_events import _event, _post, _work

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
_SUMMARIES = sa.text(
    "SELECT customer_id, orders, lifetime_value, first_purchase_at, last_purchase_at"
    " FROM purchase_summaries WHERE orders > 0"
)
# The summary as a re-aggregation of the purchases, for comparison.
_AGGREGATE = sa.text(
    "SELECT customer_id, count(*), sum(total), min(completed_at), max(completed_at)"
    " FROM purchases WHERE status = 'completed' GROUP BY customer_id"
)


def _order(org, customer_id, order_id, total, *, cancelled=False, occurred=NOW, completed=NOW):
    kind = "orders.order.cancelled" if cancelled else "orders.order.completed"
    return _event(
        org,
        kind,
        occurred=occurred,
        customer_id=str(customer_id),
        order_id=str(order_id),
        total=total,
        completed_at=completed.isoformat(),
    )


def _rows(org, statement) -> set[tuple]:
    with factories.scoped(org.organization_id):
        return {tuple(row) for row in db.session.execute(statement)}


def test_summaries_equal_a_reaggregation_after_completed_cancelled_and_duplicate_events(
    app, client, org_a, org_b
):
    ana, beto = (factories.customer_create(org_a.organization_id) for _ in range(2))
    theirs = factories.customer_create(org_b.organization_id)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    completed = [
        _order(org_a, ana.customer_id, first, "10.00", completed=NOW - timedelta(days=30)),
        _order(org_a, ana.customer_id, second, "25.50", completed=NOW - timedelta(days=2)),
        _order(org_a, beto.customer_id, third, "7.25"),
        _order(org_b, theirs.customer_id, uuid.uuid4(), "99.00"),
    ]
    assert _post(client, completed).status_code == 202
    _work(app)
    # The same order again under a new event id, and a cancellation of Ana's last order.
    again = dict(completed[0], event_id=str(uuid.uuid4()))
    cancel = _order(
        org_a,
        ana.customer_id,
        second,
        "25.50",
        cancelled=True,
        occurred=NOW + timedelta(hours=1),
        completed=NOW - timedelta(days=2),
    )
    assert _post(client, [again, cancel]).status_code == 202
    _work(app)
    summaries = _rows(org_a, _SUMMARIES)
    assert summaries == _rows(org_a, _AGGREGATE)
    assert summaries == {
        (ana.customer_id, 1, Decimal("10.00"), NOW - timedelta(days=30), NOW - timedelta(days=30)),
        (beto.customer_id, 1, Decimal("7.25"), NOW, NOW),
    }
    # Beto's only order is cancelled: his summary keeps the row, with no purchases.
    later = NOW + timedelta(hours=2)
    _post(client, _order(org_a, beto.customer_id, third, "7.25", cancelled=True, occurred=later))
    _work(app)
    assert _rows(org_a, _SUMMARIES) == _rows(org_a, _AGGREGATE)
    assert factories.customer_row(org_a.organization_id, beto.customer_id).last_purchase_at is None
    with factories.scoped(org_a.organization_id):
        assert (
            db.session.scalar(
                sa.text("SELECT orders FROM purchase_summaries WHERE customer_id = :id"),
                {"id": beto.customer_id},
            )
            == 0
        )
    assert len(_rows(org_b, _SUMMARIES)) == 1  # the other organization's own summary


def _expected(purchases: dict[uuid.UUID, list[tuple]], customers: list[uuid.UUID]) -> dict:
    """The segments by the module docstring's formula, computed from the purchases in Python."""
    stats = {}
    for customer_id, rows in purchases.items():
        done = [(total, when) for total, when, status in rows if status == "completed"]
        if done:
            last = max(when for _, when in done).astimezone(clock.BUSINESS_ZONE).date()
            stats[customer_id] = (last, len(done), sum(total for total, _ in done))
    others = max(len(stats) - 1, 1)

    def score(customer_id, axis):
        worse = sum(1 for row in stats.values() if row[axis] < stats[customer_id][axis])
        return min(5, 1 + 5 * worse // others)

    expected = {customer_id: ("new", None, None, None, False, False) for customer_id in customers}
    for customer_id, (*_, value) in stats.items():
        r, f, m = (score(customer_id, axis) for axis in range(3))
        higher = sum(1 for row in stats.values() if row[2] > value)
        segment = next(
            code
            for code, rule in (
                ("champions", r >= 4 and f >= 4 and m >= 4),
                ("loyal", r >= 3 and f >= 4),
                ("new", r >= 4 and f == 1),
                ("potential_loyalist", r >= 3),
                ("at_risk", r <= 2 and f >= 3),
                ("lost", True),
            )
            if rule
        )
        vip = segment == "champions" or higher / others <= 0.05
        at_risk = segment == "at_risk" or (segment == "lost" and m >= 4)
        expected[customer_id] = (segment, r, f, m, vip, at_risk)
    return expected


def _stored(org) -> dict:
    return {
        row[0]: tuple(row[1:])
        for row in _rows(
            org,
            sa.text(
                "SELECT customer_id, segment_code, rfm_recency, rfm_frequency, rfm_monetary,"
                " is_vip, is_at_risk FROM customer_segments"
            ),
        )
    }


def _recompute(org, *, full=False):
    with factories.scoped(org.organization_id):
        result = segments_recompute(full=full)
        db.session.commit()
    return result


def test_incremental_recomputes_equal_the_full_formula_and_write_only_changes(org_a):
    rng = random.Random(15)
    customers = [factories.customer_create(org_a.organization_id).customer_id for _ in range(40)]
    purchases: dict[uuid.UUID, list[tuple]] = defaultdict(list)

    def buy(customer_id, count):
        with factories.scoped(org_a.organization_id):
            for _ in range(count):
                total = Decimal(rng.choice([10, 25, 40, 100, 250]))
                when = NOW - timedelta(days=rng.choice([1, 3, 20, 60, 200, 400]))
                status = "cancelled" if rng.random() < 0.1 else "completed"
                purchases[customer_id].append((total, when, status))
                db.session.add(
                    Purchase(
                        order_id=uuid.uuid4(),
                        customer_id=customer_id,
                        total=total,
                        completed_at=when,
                        status=status,
                        event_occurred_at=when,
                    )
                )
            db.session.commit()

    for customer_id in customers[:32]:  # eight never buy
        buy(customer_id, rng.randint(1, 6))
    first = _recompute(org_a)
    assert first.written == len(customers)
    assert _stored(org_a) == _expected(purchases, customers)

    nothing = _recompute(org_a)  # nothing changed since: nothing considered, nothing written
    assert (nothing.considered, nothing.written) == (0, 0)

    for _ in range(4):  # a few customers buy again, one new customer arrives
        for customer_id in rng.sample(customers, 3):
            buy(customer_id, rng.randint(1, 3))
        customers.append(factories.customer_create(org_a.organization_id).customer_id)
        result = _recompute(org_a)
        assert _stored(org_a) == _expected(purchases, customers)
        assert result.considered < len(customers)  # incremental, not everyone again
        assert result.written <= result.considered
    full = _recompute(org_a, full=True)  # the nightly full pass agrees: nothing to write
    assert (full.considered, full.written) == (len(customers), 0)
    with factories.scoped(org_a.organization_id):
        kinds = list(db.session.scalars(sa.select(SegmentRun.kind).order_by(SegmentRun.started_at)))
    assert kinds == ["full", "incremental", *["incremental"] * 4, "full"]


def test_a_buyer_moving_a_boundary_rescores_customers_whose_own_summary_did_not_change(org_a):
    # Six one-order buyers with rising totals score M = 1, 2, 3, 4, 5, 5; a seventh, bigger one
    # shifts the quintiles, so customers whose own summary did not change get new scores too.
    customers = [factories.customer_create(org_a.organization_id).customer_id for _ in range(7)]
    for position, customer_id in enumerate(customers[:6], start=1):
        factories.order_number(
            org_a.organization_id,
            customer_id,
            total=Decimal(10 * position),
            completed_at=NOW,
            event_occurred_at=NOW,
        )
    _recompute(org_a)
    before = _stored(org_a)
    assert sorted(row[3] for row in before.values() if row[3]) == [1, 2, 3, 4, 5, 5]
    factories.order_number(
        org_a.organization_id,
        customers[6],
        total=Decimal("1000"),
        completed_at=NOW,
        event_occurred_at=NOW,
    )
    result = _recompute(org_a)
    after = _stored(org_a)
    assert after[customers[6]][3] == 5
    # Four M scores move, the former top buyer is no longer VIP (top 5 %), the new one is scored.
    moved = {c for c in before if before[c] != after[c]}
    assert len(moved) == 6 and result.written == len(moved)  # only the rows that changed


def test_two_recomputes_of_one_organization_at_once_run_one_after_the_other(org_a):
    customers = [factories.customer_create(org_a.organization_id).customer_id for _ in range(8)]
    for position, customer_id in enumerate(customers, start=1):
        factories.order_number(org_a.organization_id, customer_id, total=Decimal(position))
    _recompute(org_a)
    factories.order_number(org_a.organization_id, customers[0], total=Decimal("500"))
    barrier = threading.Barrier(2)
    results = []

    def worker():
        barrier.wait()
        results.append(_recompute(org_a))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # The second waited for the first and started from its snapshot: nothing left to consider.
    assert sorted(result.considered for result in results)[0] == 0
    assert sum(result.written for result in results) > 0
    purchases = defaultdict(list)
    with factories.scoped(org_a.organization_id):
        for row in db.session.execute(
            sa.text("SELECT customer_id, total, completed_at, status FROM purchases")
        ):
            purchases[row.customer_id].append((row.total, row.completed_at, row.status))
    assert _stored(org_a) == _expected(purchases, customers)


def test_the_migration_builds_summaries_and_segment_purchase_days_from_purchases(
    app, owner_engine, org_a
):
    """0022 on a database of the old shape: summaries and last purchase days from purchases."""
    from flask_migrate import downgrade, upgrade

    buyer, cancelled = (factories.customer_create(org_a.organization_id) for _ in range(2))
    with app.app_context():
        downgrade(revision="0019_collections")
    try:
        with owner_engine.begin() as connection:
            connection.execute(
                sa.text("SELECT set_config('app.current_organization_id', :org, true)"),
                {"org": str(org_a.organization_id)},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO purchases (organization_id, order_id, customer_id, total,"
                    " completed_at, status, event_occurred_at)"
                    " VALUES (:org, gen_random_uuid(), :buyer, 10, :first, 'completed', :first),"
                    " (:org, gen_random_uuid(), :buyer, 15.5, :last, 'completed', :last),"
                    " (:org, gen_random_uuid(), :cancelled, 99, :last, 'cancelled', :last)"
                ),
                {
                    "org": org_a.organization_id,
                    "buyer": buyer.customer_id,
                    "cancelled": cancelled.customer_id,
                    "first": NOW - timedelta(days=40),
                    "last": NOW,
                },
            )
            connection.execute(
                sa.text(
                    "INSERT INTO customer_segments (organization_id, customer_id, segment_code,"
                    " total_orders, days_since_last_purchase) VALUES (:org, :buyer, 'lost', 2, 3)"
                ),
                {"org": org_a.organization_id, "buyer": buyer.customer_id},
            )
    finally:
        with app.app_context():
            upgrade()
    assert (
        _rows(org_a, _SUMMARIES)
        == _rows(org_a, _AGGREGATE)
        == {(buyer.customer_id, 2, Decimal("25.50"), NOW - timedelta(days=40), NOW)}
    )
    with factories.scoped(org_a.organization_id):
        segment = db.session.scalar(
            sa.text("SELECT last_purchase_on FROM customer_segments WHERE customer_id = :id"),
            {"id": buyer.customer_id},
        )
    assert segment == NOW.astimezone(clock.BUSINESS_ZONE).date()
