"""RFM segmentation, set-based in PostgreSQL, from the per-customer purchase summary.

R, F and M are tie-aware quintiles over the organization's customers with completed purchases:
score = least(5, 1 + floor(5 * percent_rank())), ordered worst to best, where percent_rank() is
the share of the other buyers strictly worse than this one (a tie group takes its lowest
position), so the worst buyers always score 1. Recency is ordered by the day of the last
purchase (Panama), oldest first, so R = 5 for the most recent buyers. Equal inputs give equal
scores; the customer id never decides. The formula and its consequences in product terms:
docs/segments.md.
First matching rule wins: champions (R>=4, F>=4, M>=4), loyal (R>=3, F>=4), new (R>=4, F=1),
potential_loyalist (R>=3), at_risk (R<=2, F>=3), lost (R<=2, F<=2). Customers without purchases
are 'new' with no scores. VIP: champions, or at most 5 % of the other buyers have a higher
lifetime value. At risk: at_risk, or lost with M>=4.

Why it can be incremental. With B = max(buyers - 1, 1) and c_k = ceil(k * B / 5), a buyer's score
on an axis is 1 + #{k in 1..4 : at least c_k buyers are strictly worse}, and "at least c buyers
are strictly worse than v" is "v > the c-th smallest value". So each axis has four boundary
values (the c_k-th smallest), the VIP rule one more (the value at ascending position
buyers - floor((buyers - 1) / 20)), and every customer's row is a function of its own summary and
these 13 values. A run computes the boundaries (three sorts of the buyers' summaries) and
considers only the customers whose summary changed since the previous run's snapshot (a new
customer's summary is created with it, so it counts as changed) or whose value lies between an
old and a new position of a boundary that moved; of those, only rows whose values differ are
written (`IS DISTINCT FROM`). A full run considers every customer (the nightly job: it also
repairs anything written outside this path).
"""

from dataclasses import dataclass

import sqlalchemy as sa

from portal.db import current_organization_id
from portal.extensions import db
from portal.segments.models import SEGMENTS, CustomerSegment, SegmentRun
from portal.webhooks.services import FAN_OUT, deliveries_start_after_commit, outbox_subscribed

# One recompute of an organization at a time: a run's snapshot must include the previous run's
# writes, or rows it did not consider could keep values older than what the run recorded.
_SERIALIZE = sa.text("SELECT pg_advisory_xact_lock(hashtextextended('segments ' || :org, 0))")
_PREVIOUS = (
    sa.select(
        SegmentRun.snapshot,
        SegmentRun.recency_bounds,
        SegmentRun.frequency_bounds,
        SegmentRun.monetary_bounds,
        SegmentRun.vip_bound,
    )
    .order_by(SegmentRun.started_at.desc())
    .limit(1)
)
# One statement, so the boundaries, the candidates, the values they are scored from and the
# snapshot recorded for the next run all come from the same snapshot.
_RECOMPUTE = sa.text(
    """
    WITH buyers AS MATERIALIZED (
        SELECT customer_id, orders, lifetime_value AS value,
               (last_purchase_at AT TIME ZONE 'America/Panama')::date AS day
        FROM purchase_summaries WHERE orders > 0
    ),
    size AS (SELECT count(*)::int AS n FROM buyers),
    -- The boundaries' ascending positions c (1-based) as fractions percentile_disc() maps back
    -- to exactly c: the four quintile boundaries (c_k = ceil(k * B / 5)), then the VIP one.
    cut AS (
        SELECT array_agg((((k * greatest(n - 1, 1) + 4) / 5) - 0.5) / greatest(n, 1)
                         ORDER BY k) AS quintiles,
               (n - (n - 1) / 20 - 0.5) / greatest(n, 1) AS vip
        FROM size, generate_series(1, 4) k GROUP BY n
    ),
    bounds AS MATERIALIZED (  -- one row, NULLs when there are no buyers
        SELECT r, f, m[1:4] AS m, m[5] AS vip FROM (
            SELECT percentile_disc((SELECT quintiles FROM cut)) WITHIN GROUP (ORDER BY day) AS r,
                   percentile_disc((SELECT quintiles FROM cut)) WITHIN GROUP (ORDER BY orders)
                       AS f,
                   percentile_disc((SELECT quintiles || vip FROM cut))
                       WITHIN GROUP (ORDER BY value) AS m
            FROM buyers
        ) sorted
    ),
    moved AS MATERIALIZED (  -- the value ranges whose scores a moved boundary changed
        SELECT
            (SELECT coalesce(array_agg(daterange(least(o, n), greatest(o, n), '[]')), '{}')
             FROM unnest(CAST(:old_r AS date[]), bounds.r) b(o, n)
             WHERE o IS DISTINCT FROM n) AS r,
            (SELECT coalesce(array_agg(int4range(least(o, n), greatest(o, n), '[]')), '{}')
             FROM unnest(CAST(:old_f AS int[]), bounds.f) b(o, n)
             WHERE o IS DISTINCT FROM n) AS f,
            (SELECT coalesce(array_agg(numrange(least(o, n), greatest(o, n), '[]')), '{}')
             FROM unnest(CAST(:old_m AS numeric[]) || CAST(:old_vip AS numeric),
                         bounds.m || bounds.vip) b(o, n)
             WHERE o IS DISTINCT FROM n) AS m
        FROM bounds
    ),
    candidates AS (
        SELECT customer_id FROM customers WHERE CAST(:full AS boolean)
        UNION
        SELECT s.customer_id FROM purchase_summaries s
        WHERE NOT CAST(:full AS boolean)
          AND s.changed_xid >= pg_snapshot_xmin(CAST(:since AS pg_snapshot))
          AND NOT pg_visible_in_snapshot(s.changed_xid, CAST(:since AS pg_snapshot))
        UNION
        SELECT b.customer_id FROM buyers b, moved
        WHERE NOT CAST(:full AS boolean)
          AND (b.day <@ ANY(moved.r) OR b.orders <@ ANY(moved.f) OR b.value <@ ANY(moved.m))

    ),
    scored AS MATERIALIZED (  -- materialized: each score is computed once per row
        SELECT c.customer_id, b.orders, b.value, b.day,
               1 + (b.day > r[1])::int + (b.day > r[2])::int + (b.day > r[3])::int
                 + (b.day > r[4])::int AS r,
               1 + (b.orders > f[1])::int + (b.orders > f[2])::int + (b.orders > f[3])::int
                 + (b.orders > f[4])::int AS f,
               1 + (b.value > m[1])::int + (b.value > m[2])::int + (b.value > m[3])::int
                 + (b.value > m[4])::int AS m,
               b.value >= bounds.vip AS top_value
        FROM candidates c LEFT JOIN buyers b ON b.customer_id = c.customer_id, bounds
    ),
    segmented AS MATERIALIZED (  -- and the segment once
        SELECT scored.*,
               CASE
                   WHEN orders IS NULL THEN 'new'
                   WHEN r >= 4 AND f >= 4 AND m >= 4 THEN 'champions'
                   WHEN r >= 3 AND f >= 4 THEN 'loyal'
                   WHEN r >= 4 AND f = 1 THEN 'new'
                   WHEN r >= 3 THEN 'potential_loyalist'
                   WHEN r <= 2 AND f >= 3 THEN 'at_risk'
                   ELSE 'lost'
               END AS segment_code
        FROM scored
    ),
    computed AS (
        SELECT customer_id, segment_code, r, f, m, coalesce(value, 0) AS lifetime_value,
               coalesce(round(value / orders, 2), 0) AS average_order_value,
               coalesce(orders, 0) AS total_orders, day AS last_purchase_on,
               coalesce(segment_code = 'champions' OR top_value, false) AS is_vip,
               coalesce(segment_code = 'at_risk' OR (segment_code = 'lost' AND m >= 4), false)
                   AS is_at_risk
        FROM segmented
    ),
    changes AS MATERIALIZED (
        SELECT n.*, o.customer_id IS NOT NULL AS existed, o.segment_code AS previous_segment
        FROM computed n LEFT JOIN customer_segments o ON o.customer_id = n.customer_id
        WHERE o.customer_id IS NULL
           OR (o.segment_code, o.rfm_recency, o.rfm_frequency, o.rfm_monetary, o.lifetime_value,
               o.average_order_value, o.total_orders, o.last_purchase_on, o.is_vip, o.is_at_risk)
              IS DISTINCT FROM
              (n.segment_code, n.r, n.f, n.m, n.lifetime_value, n.average_order_value,
               n.total_orders, n.last_purchase_on, n.is_vip, n.is_at_risk)
    ),
    upserted AS (
        INSERT INTO customer_segments (
            organization_id, customer_id, segment_code, rfm_recency, rfm_frequency,
            rfm_monetary, lifetime_value, average_order_value, total_orders, last_purchase_on,
            is_vip, is_at_risk, calculated_at, updated_at
        )
        SELECT :org, customer_id, segment_code, r, f, m, lifetime_value, average_order_value,
               total_orders, last_purchase_on, is_vip, is_at_risk, now(), now()
        FROM changes
        ON CONFLICT (organization_id, customer_id) DO UPDATE SET
            segment_code = excluded.segment_code, rfm_recency = excluded.rfm_recency,
            rfm_frequency = excluded.rfm_frequency, rfm_monetary = excluded.rfm_monetary,
            lifetime_value = excluded.lifetime_value,
            average_order_value = excluded.average_order_value,
            total_orders = excluded.total_orders, last_purchase_on = excluded.last_purchase_on,
            is_vip = excluded.is_vip, is_at_risk = excluded.is_at_risk,
            calculated_at = excluded.calculated_at, updated_at = excluded.updated_at
        RETURNING customer_id
    ),
    segment_changes AS (  -- the customer's timeline: a segment that changed, from what to what
        INSERT INTO customer_segment_changes (organization_id, customer_id, previous_segment,
                                              segment)
        SELECT :org, customer_id, previous_segment, segment_code
        FROM changes
        WHERE existed AND previous_segment IS DISTINCT FROM segment_code
    ),
    events AS (  -- customer.segment_changed, only when some subscription wants it
        INSERT INTO outbox_events (organization_id, event_type, data)
        SELECT :org, 'customer.segment_changed',
               jsonb_build_object('customer_id', customer_id,
                                  'previous_segment', previous_segment,
                                  'segment', segment_code)
        FROM changes
        WHERE CAST(:publish AS boolean) AND existed
          AND previous_segment IS DISTINCT FROM segment_code
        RETURNING organization_id, event_id, event_type
    ),
    fanned AS ("""
    + FAN_OUT.format(events="events")
    + """ RETURNING delivery_id),
    run AS (
        INSERT INTO segment_runs (organization_id, kind, snapshot, buyers, recency_bounds,
                                  frequency_bounds, monetary_bounds, vip_bound, considered,
                                  written)
        SELECT :org, CASE WHEN CAST(:full AS boolean) THEN 'full' ELSE 'incremental' END,
               pg_current_snapshot(), size.n, bounds.r, bounds.f, bounds.m, bounds.vip,
               (SELECT count(*) FROM candidates), (SELECT count(*) FROM upserted)
        FROM size, bounds
        RETURNING considered, written
    )
    SELECT considered, written, (SELECT count(*) FROM fanned) AS fanned FROM run
    """
)


@dataclass(frozen=True)
class RecomputeResult:
    """What a recompute did: customers it considered, rows it wrote."""

    considered: int
    written: int


def segments_recompute(*, full: bool = False) -> RecomputeResult:
    """Recompute the current organization's segments, writing only rows whose values changed.

    Incremental unless `full` or there is no previous run (see the module docstring). Changes of
    segment are published (customer.segment_changed) when some subscription wants them.
    """
    organization_id = current_organization_id()
    db.session.execute(_SERIALIZE, {"org": str(organization_id)})
    # Three sorts of the buyers (the boundaries) fit in memory instead of spilling to disk at a
    # million customers; one recompute per worker at a time bounds it.
    db.session.execute(sa.text("SET LOCAL work_mem = '64MB'"))
    previous = db.session.execute(_PREVIOUS).first()
    full = full or previous is None
    row = db.session.execute(
        _RECOMPUTE,
        {
            "org": organization_id,
            "full": full,
            "since": previous.snapshot if previous else None,
            "old_r": previous.recency_bounds if previous else None,
            "old_f": previous.frequency_bounds if previous else None,
            "old_m": previous.monetary_bounds if previous else None,
            "old_vip": previous.vip_bound if previous else None,
            "publish": outbox_subscribed("customer.segment_changed"),
        },
    ).one()
    if row.fanned:
        deliveries_start_after_commit()
    return RecomputeResult(considered=row.considered, written=row.written)


def segment_distribution() -> list[dict]:
    """Customers and value per segment, in the segments' display order (empty ones included)."""
    rows = {
        row.segment_code: row
        for row in db.session.execute(
            sa.select(
                CustomerSegment.segment_code,
                sa.func.count().label("customers"),
                sa.func.coalesce(sa.func.sum(CustomerSegment.lifetime_value), 0).label("value"),
            ).group_by(CustomerSegment.segment_code)
        )
    }
    return [
        {
            "code": code,
            "label": label,
            "customers": rows[code].customers if code in rows else 0,
            "value": rows[code].value if code in rows else 0,
        }
        for code, label in SEGMENTS.items()
    ]


def segments_last_computed():
    """When segments were last computed for this organization, if ever."""
    return db.session.scalar(sa.select(sa.func.max(SegmentRun.finished_at)))
