"""Segment recompute benchmark: RFM in SQL inside a real worker vs the naive pandas approach.

`python -m bench.segments` starts its own PostgreSQL and Redis under `.data/bench-segments`
(unless DATABASE_URL/REDIS_URL are set), migrates `portal_bench_segments` and, for each size
(default 100,000 and 1,000,000 customers), loads one organization with that many customers and
about 5 purchases each (once: later runs reuse complete organizations; `--fresh` rebuilds the
schema and reloads, needed after a migration was edited in place), then measures
`segments_recompute_job` run by a fresh `python worker.py` (enqueued with enqueue_scoped, timed
from enqueue to finished), sampling the worker's RSS and its PostgreSQL backend's heap
(anonymous) memory every 50 ms, four times:

1. first: no segment rows and no previous run (a full run that inserts every row);
2. unchanged: nothing changed since (an incremental run: nothing to consider or write);
3. after `--change` (1 %) of the customers got a new order (inserted into purchases, whose
   trigger refreshes their summaries, as the order events' apply does): an incremental run;
4. nightly: a full run (every customer considered); it must write nothing, since the
   incremental run already wrote exactly what a full one would.

Then the statement's scoring part alone (no comparison with stored rows, no writes) as the app
role, and the naive approach in a separate Python process: every purchase of the organization
read into pandas, R/F/M quintiles and the rules computed there (its counts are checked against
the SQL's), with its time and peak RSS.

It prints the table and PASS/FAIL for the issue's targets at the largest size measured: the
full (nightly, change-only) recompute >= 3x faster than pandas, the 1 %-change recompute <= 5 s,
the nightly run writing nothing the incremental runs missed, and flat worker memory.
pandas is a benchmark-only dependency (`pip install pandas`). See docs/benchmarks-worker.md.
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import sqlalchemy as sa

from bench.events import wait_workers_ready, worker_start
from bench.harness import (
    PROJECT_ROOT,
    child_environ,
    organization_ensure,
    owner_engine_for,
    portal_app,
    say,
    schema_rebuild,
    services,
)
from portal.embedded import process_stop

JOB = "portal.segments.jobs:segments_recompute_job"
TARGET_RATIO = 3.0  # pandas seconds / full (nightly) recompute seconds
TARGET_CHANGED_SECONDS = 5.0  # the recompute after 1 % of the customers changed
SAMPLE_SECONDS = 0.05
MB = 1024 * 1024
PURCHASE_COLUMNS = [
    "order_id",
    "customer_id",
    "total",
    "completed_at",
    "status",
    "event_occurred_at",
]
SEGMENT_ORDER = ["champions", "loyal", "new", "potential_loyalist", "at_risk", "lost"]


def organization_for(size: int) -> uuid.UUID:
    """One organization per size; its id spells the size."""
    return uuid.UUID(f"00000000-0000-4000-8000-{size:012d}")


def organization_name(size: int, *, loaded: bool) -> str:
    """The organization's name; it says '(cargando)' until its data is completely loaded."""
    return f"Bench Segmentos {size:,}" + ("" if loaded else " (cargando)")


# --- data ------------------------------------------------------------------------------------


def purchase_rows(customer_ids: list[uuid.UUID], rng: random.Random, now: datetime):
    """About 5 purchases per customer (0 to 60, long tail), over two years, 4 % cancelled."""
    horizon = 730 * 86400
    for customer_id in customer_ids:
        for _ in range(min(60, int(rng.expovariate(1 / 5.5)))):
            completed = now - timedelta(seconds=rng.randrange(horizon))
            cents = max(100, int(rng.lognormvariate(8.2, 0.9)))
            yield (
                uuid.UUID(int=rng.getrandbits(128) | (4 << 76)),
                customer_id,
                f"{cents // 100}.{cents % 100:02d}",
                completed,
                "cancelled" if rng.random() < 0.04 else "completed",
                completed,
            )


def purchases_bulk_load(organization_id: uuid.UUID, rows) -> int:
    """COPY purchases into a temp table, then one INSERT … SELECT in the organization's scope."""
    from portal.seed import bulk_load

    return bulk_load("purchases", PURCHASE_COLUMNS, organization_id, rows)


def owner_scoped(owner: sa.Engine, organization_id: uuid.UUID, *statements: str) -> None:
    """Run statements as the owner inside one organization's scope (RLS is forced on it too)."""
    with owner.begin() as connection:
        connection.execute(
            sa.text("SELECT set_config('app.current_organization_id', :org, true)"),
            {"org": str(organization_id)},
        )
        for statement in statements:
            connection.exec_driver_sql(statement)


def vacuum(owner: sa.Engine, *tables: str) -> None:
    """VACUUM (ANALYZE) tables as the owner: fresh statistics and a visibility map."""
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in tables:
            connection.exec_driver_sql(f"VACUUM (ANALYZE) {table}")


def dataset_counts(organization_id: uuid.UUID) -> tuple[int, int, str | None]:
    """(customers, purchases, organization name) as the app role, inside the app context."""
    from portal.db import organization_scope
    from portal.extensions import db

    with organization_scope(organization_id):
        row = db.session.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM purchases),"
                " (SELECT name FROM organizations WHERE organization_id = :org)"
            ),
            {"org": organization_id},
        ).one()
        db.session.commit()
    return row[0], row[1], row[2]


def dataset_ensure(app, owner: sa.Engine, size: int, args) -> tuple[int, int]:
    """Load the size's organization unless it is complete; (customers, purchases)."""
    from portal.db import organization_scope
    from portal.extensions import db
    from portal.seed import customer_rows, customers_bulk_load

    organization_id = organization_for(size)
    with app.app_context():
        customers, purchases, name = dataset_counts(organization_id)
        if name == organization_name(size, loaded=True) and customers == size:
            say(f"  {size:,}: reusing {customers:,} customers and {purchases:,} purchases")
            return customers, purchases
        if name is not None:
            say(f"  {size:,}: incomplete earlier load ({customers:,} customers); deleting it")
            owner_scoped(
                owner,
                organization_id,
                "DELETE FROM customer_segments",
                "DELETE FROM segment_runs",
                "DELETE FROM purchases",
                "DELETE FROM purchase_summaries",
                "DELETE FROM customers",
            )
        organization_ensure(organization_id, organization_name(size, loaded=False))
        started = time.perf_counter()
        now = datetime.now(UTC)
        customers = purchases = 0
        for start in range(0, size, args.chunk):
            rows = list(customer_rows(min(args.chunk, size - start), start=start, seed=args.seed))
            customers += customers_bulk_load(organization_id, rows)
            rng = random.Random(args.seed * 1_000_003 + start)
            purchases += purchases_bulk_load(
                organization_id, purchase_rows([row[0] for row in rows], rng, now)
            )
            say(
                f"  {size:,}: {customers:>9,} customers, {purchases:>10,} purchases "
                f"({time.perf_counter() - started:.0f} s)"
            )
        with organization_scope(organization_id):
            db.session.execute(
                sa.text("UPDATE organizations SET name = :name WHERE organization_id = :org"),
                {"name": organization_name(size, loaded=True), "org": organization_id},
            )
            db.session.commit()
    vacuum(owner, "customers", "purchases", "purchase_summaries")
    say(f"  {size:,}: loaded and vacuumed in {time.perf_counter() - started:.0f} s")
    return customers, purchases


def customers_change(app, owner, organization_id: uuid.UUID, share: float, seed: int) -> int:
    """A new completed order today for `share` of the customers (random); how many changed."""
    from portal.db import organization_scope
    from portal.extensions import db

    with app.app_context(), organization_scope(organization_id):
        customers = list(
            db.session.scalars(sa.text("SELECT customer_id FROM customers ORDER BY customer_id"))
        )
        db.session.rollback()
    rng = random.Random(seed)
    chosen = rng.sample(customers, max(1, round(share * len(customers))))
    now = datetime.now(UTC)
    rows = [(uuid.uuid4(), c, "42.00", now, "completed", now) for c in chosen]  # new orders
    with app.app_context():
        purchases_bulk_load(organization_id, rows)
    vacuum(owner, "purchase_summaries")
    return len(chosen)


# --- the SQL recompute in a real worker ------------------------------------------------------


@dataclass
class JobRun:
    """One segments_recompute_job run measured from the outside."""

    label: str
    seconds: float = float("nan")
    in_job_seconds: float = float("nan")
    rows: dict | None = None
    status: str = ""
    worker_rss_before: int = 0
    worker_rss_peak: int = 0
    backend_heap_peak: int = 0
    temp_bytes: int = 0
    samples: int = 0

    @property
    def ok(self) -> bool:
        """The job finished."""
        return self.status == "finished"


def app_backends(database: str, role: str) -> list[psutil.Process]:
    """This machine's PostgreSQL backends of `role` on `database` (the worker's, here)."""
    marker = f"postgres: {role} {database} "
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info.get("cmdline") or [])
        if process.info.get("name") == "postgres" and cmdline.startswith(marker):
            found.append(process)
    return found


def heap_memory(processes: list[psutil.Process]) -> int:
    """Largest anonymous (private heap: sorts, hashes) memory among the processes, in bytes."""
    # From /proc/<pid>/smaps_rollup: unlike RSS or USS it leaves out shared_buffers pages.
    largest = 0
    for process in processes:
        try:
            text = Path(f"/proc/{process.pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Anonymous:"):
                largest = max(largest, int(line.split()[1]) * 1024)
    return largest


def temp_bytes(owner: sa.Engine) -> int:
    """Bytes written to temporary files by this database so far (sorts/hashes over work_mem)."""
    with owner.connect() as connection:
        connection.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        return connection.scalar(
            sa.text("SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()")
        )


def job_run(app, owner: sa.Engine, worker, organization_id, label: str, args, *, full) -> JobRun:
    """Enqueue the recompute, wait for it while sampling memory every 50 ms."""
    from portal.tasks import enqueue_scoped

    run = JobRun(label)
    worker_process = psutil.Process(worker.pid)
    run.worker_rss_before = worker_process.memory_info().rss
    temp_before = temp_bytes(owner)
    backends: list[psutil.Process] = []
    next_scan = 0.0
    with app.app_context():
        started = time.perf_counter()
        job = enqueue_scoped(JOB, organization_id=organization_id, full=full)
        deadline = time.monotonic() + args.job_timeout
        while time.monotonic() < deadline:
            run.worker_rss_peak = max(run.worker_rss_peak, worker_process.memory_info().rss)
            if time.perf_counter() >= next_scan:
                backends = app_backends(args.database, args.app_role)
                next_scan = time.perf_counter() + 0.5
            run.backend_heap_peak = max(run.backend_heap_peak, heap_memory(backends))
            run.samples += 1
            status = job.get_status(refresh=True)
            if status in ("finished", "failed", "stopped", "canceled", "scheduled"):
                break
            time.sleep(SAMPLE_SECONDS)
        run.seconds = time.perf_counter() - started
        run.status = str(getattr(status, "value", status))
        if run.ok:
            job.refresh()
            run.rows = job.return_value()
            if job.started_at and job.ended_at:
                run.in_job_seconds = (job.ended_at - job.started_at).total_seconds()
        else:
            say(f"  job {label} ended as {run.status!r}; worker log: {args.data_dir}")
            job.cancel()
    time.sleep(0.6)  # cumulative statistics are flushed at most once a second
    run.temp_bytes = temp_bytes(owner) - temp_before
    return run


def _full_parameters(organization_id: uuid.UUID) -> dict:
    """The recompute's parameters for a full run (every customer considered)."""
    return {
        "org": organization_id,
        "full": True,
        "since": None,
        "old_r": None,
        "old_f": None,
        "old_m": None,
        "old_vip": None,
        "publish": False,
    }


def select_only_seconds(app, organization_id: uuid.UUID) -> tuple[float, dict[str, int]]:
    """The statement's scoring part alone (no comparison with stored rows, no writes)."""
    # It computes what the pandas baseline computes (segments, VIP, at risk), so the two compare.
    from portal.db import organization_scope
    from portal.extensions import db
    from portal.segments.services import _RECOMPUTE

    text = _RECOMPUTE.text
    cut = text.find(",\n    changes AS")
    if cut < 0:
        return float("nan"), {}
    statement = sa.text(
        text[:cut] + " SELECT segment_code, count(*), count(*) FILTER (WHERE is_vip),"
        " count(*) FILTER (WHERE is_at_risk) FROM computed WHERE total_orders > 0"
        " GROUP BY segment_code"
    )
    with app.app_context(), organization_scope(organization_id):
        started = time.perf_counter()
        rows = db.session.execute(statement, _full_parameters(organization_id)).all()
        seconds = time.perf_counter() - started
        db.session.rollback()
    counts = {code: count for code, count, _, _ in rows}
    counts["vip"] = sum(vip for _, _, vip, _ in rows)
    counts["at_risk_flag"] = sum(risk for _, _, _, risk in rows)
    return seconds, counts


def explain(app, organization_id: uuid.UUID) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of a full recompute as the app role, rolled back."""
    from portal.db import organization_scope
    from portal.extensions import db
    from portal.segments.services import _RECOMPUTE

    with app.app_context(), organization_scope(organization_id):
        lines = [
            row[0]
            for row in db.session.execute(
                sa.text("EXPLAIN (ANALYZE, BUFFERS) " + _RECOMPUTE.text),
                _full_parameters(organization_id),
            )
        ]
        db.session.rollback()
    return lines


def explain_print(app, organization_id: uuid.UUID, case: str) -> None:
    """Print the recompute's EXPLAIN (ANALYZE, BUFFERS) for one case."""
    say(f"  EXPLAIN (ANALYZE, BUFFERS) of the recompute, {case} (app role, rolled back):")
    for line in explain(app, organization_id):
        say("    " + line)


def sql_segment_counts(app, organization_id: uuid.UUID) -> dict[str, int]:
    """What the job wrote for customers with purchases: rows per segment, VIP and at risk."""
    from portal.db import organization_scope
    from portal.extensions import db

    with app.app_context(), organization_scope(organization_id):
        rows = db.session.execute(
            sa.text(
                "SELECT segment_code, count(*), count(*) FILTER (WHERE is_vip),"
                " count(*) FILTER (WHERE is_at_risk) FROM customer_segments"
                " WHERE total_orders > 0 GROUP BY segment_code"
            )
        ).all()
        db.session.rollback()
    counts = {code: count for code, count, _, _ in rows}
    counts["vip"] = sum(vip for _, _, vip, _ in rows)
    counts["at_risk_flag"] = sum(risk for _, _, _, risk in rows)
    return counts


# --- the naive approach: pandas in a separate process ----------------------------------------


def rfm_pandas(organization_id: uuid.UUID) -> dict:
    """Naive RFM: read every purchase into pandas, score and segment there (child process)."""
    import numpy as np
    import pandas as pd

    from portal import create_app
    from portal.config import TestingConfig
    from portal.db import organization_scope
    from portal.extensions import db

    app = create_app(TestingConfig(LOG_LEVEL="WARNING"))
    with app.app_context(), organization_scope(organization_id):
        started = time.perf_counter()
        frame = pd.read_sql(
            sa.text("SELECT customer_id, total, completed_at, status FROM purchases"),
            db.session.connection(),
        )
        db.session.rollback()
    read = time.perf_counter()
    rows = len(frame)
    frame = frame[frame["status"] == "completed"]
    frame = frame.assign(cents=(frame["total"].astype(float) * 100).round().astype("int64"))
    stats = (
        frame.groupby("customer_id", sort=False)
        .agg(
            last_purchase=("completed_at", "max"), orders=("cents", "size"), value=("cents", "sum")
        )
        .reset_index()
    )
    del frame
    count = len(stats)
    # Recency by the day of the last purchase in Panama, as the SQL compares it.
    stats["day"] = (
        pd.to_datetime(stats["last_purchase"], utc=True)
        .dt.tz_convert("America/Panama")
        .dt.floor("D")
    )
    for score, column in (("r", "day"), ("f", "orders"), ("m", "value")):
        # 1 + floor(5 * percent_rank()); a tie group takes its lowest position
        position = stats[column].rank(method="min").astype("int64")
        stats[score] = np.minimum(5, 1 + 5 * (position - 1) // max(count - 1, 1))
    share = (stats["value"].rank(method="min", ascending=False) - 1) / max(count - 1, 1)
    r, f, m = stats["r"], stats["f"], stats["m"]
    segment = np.select(
        [
            (r >= 4) & (f >= 4) & (m >= 4),
            (r >= 3) & (f >= 4),
            (r >= 4) & (f == 1),
            r >= 3,
            (r <= 2) & (f >= 3),
        ],
        ["champions", "loyal", "new", "potential_loyalist", "at_risk"],
        default="lost",
    )
    stats["segment"] = segment
    vip = (stats["segment"] == "champions") | (share <= 0.05)
    at_risk = (stats["segment"] == "at_risk") | ((stats["segment"] == "lost") & (m >= 4))
    counts = {key: int(value) for key, value in stats["segment"].value_counts().items()}
    counts["vip"] = int(vip.sum())
    counts["at_risk_flag"] = int(at_risk.sum())
    done = time.perf_counter()
    return {
        "rows": rows,
        "customers": count,
        "read_seconds": read - started,
        "compute_seconds": done - read,
        "seconds": done - started,
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "counts": counts,
    }


@dataclass
class PandasRun:
    """The naive run as seen from outside: its own report plus sampled RSS."""

    report: dict = field(default_factory=dict)
    rss_peak: int = 0
    error: str = ""


def pandas_run(urls, organization_id: uuid.UUID, timeout: float) -> PandasRun:
    """Run rfm_pandas in a fresh Python process, sampling its RSS every 50 ms."""
    run = PandasRun()
    child = subprocess.Popen(  # noqa: S603 - fixed interpreter and module
        [sys.executable, "-m", "bench.segments", "--pandas-child", str(organization_id)],
        env=child_environ(urls),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    watched = psutil.Process(child.pid)
    deadline = time.monotonic() + timeout
    try:
        while child.poll() is None and time.monotonic() < deadline:
            try:
                run.rss_peak = max(run.rss_peak, watched.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(SAMPLE_SECONDS)
    finally:
        process_stop(child)
    out, err = child.communicate()
    line = next((line for line in out.splitlines() if line.startswith("BENCH_JSON ")), None)
    if child.returncode != 0 or line is None:
        run.error = f"exit {child.returncode}: {err.strip()[-500:]}"
    else:
        run.report = json.loads(line.removeprefix("BENCH_JSON "))
    return run


# --- per size and summary --------------------------------------------------------------------


@dataclass
class SizeResult:
    """Everything measured for one size."""

    size: int
    customers: int
    purchases: int
    runs: list[JobRun] = field(default_factory=list)
    select_seconds: float = float("nan")
    worker_hwm_idle: int = 0
    worker_hwm: int = 0
    pandas: PandasRun | None = None
    counts_match: bool | None = None

    changed: int = 0

    def run(self, label: str) -> JobRun:
        """The job run of that label (a blank one if it did not run)."""
        return next((run for run in self.runs if run.label == label), JobRun(label))

    @property
    def worker_peak(self) -> int:
        """Peak worker RSS over the job runs (sampled)."""
        return max((run.worker_rss_peak for run in self.runs), default=0)


def high_water_mark(pid: int) -> int:
    """A process's peak RSS since it started (VmHWM), in bytes; 0 if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# (label, full): the job runs of one size, in this order (see the module docstring).
RUNS = (("first", False), ("unchanged", False), ("changed", False), ("nightly", True))


def size_measure(app, urls, owner: sa.Engine, size: int, args) -> SizeResult:
    """Load (or reuse) a size, then run the job four times in a fresh worker and pandas once."""
    from portal.extensions import db

    organization_id = organization_for(size)
    say(f"\n== {size:,} customers")
    customers, purchases = dataset_ensure(app, owner, size, args)
    result = SizeResult(size, customers, purchases)
    owner_scoped(
        owner, organization_id, "DELETE FROM customer_segments", "DELETE FROM segment_runs"
    )
    vacuum(owner, "customer_segments")
    if args.explain:
        explain_print(app, organization_id, "first compute: no segment rows yet")
        owner_scoped(owner, organization_id, "DELETE FROM customer_segments")
        vacuum(owner, "customer_segments")

    worker_log = args.data_dir / "worker.log"
    worker = worker_start(child_environ(urls, "WARNING"), worker_log)
    try:
        wait_workers_ready(app, 1, [worker], worker_log)
        result.worker_hwm_idle = high_water_mark(worker.pid)
        with app.app_context():
            db.engine.dispose()  # so the only app-role backend left is the worker's
        for label, full in RUNS:
            if label == "changed":
                result.changed = customers_change(
                    app, owner, organization_id, args.change, args.seed + size
                )
                say(f"  {result.changed:,} customers got a new order")
            run = job_run(app, owner, worker, organization_id, label, args, full=full)
            result.runs.append(run)
            say(
                f"  job {label:<9} {run.status:<8} {run.seconds:7.2f} s (in job "
                f"{run.in_job_seconds:.2f} s), {run.rows} rows; worker RSS "
                f"{run.worker_rss_before / MB:.0f} -> peak {run.worker_rss_peak / MB:.0f} MB; "
                f"backend heap peak {run.backend_heap_peak / MB:.0f} MB; temp files "
                f"{run.temp_bytes / MB:.0f} MB; {run.samples} samples"
            )
        result.worker_hwm = high_water_mark(worker.pid)
    finally:
        process_stop(worker)

    if args.explain and all(run.ok for run in result.runs):
        explain_print(app, organization_id, "full recompute: every row exists")
    result.select_seconds, select_counts = select_only_seconds(app, organization_id)
    say(f"  scoring alone (SELECT, no comparison, no writes): {result.select_seconds:.2f} s")
    if all(run.ok for run in result.runs):
        sql_counts = sql_segment_counts(app, organization_id)
    else:
        sql_counts = {}
    if not args.skip_pandas:
        result.pandas = pandas_run(urls, organization_id, args.pandas_timeout)
        if result.pandas.error:
            say(f"  pandas failed: {result.pandas.error}")
        else:
            report = result.pandas.report
            result.counts_match = bool(sql_counts) and report["counts"] == sql_counts
            result.counts_match &= select_counts == sql_counts
            say(
                f"  pandas: {report['rows']:,} rows read in {report['read_seconds']:.1f} s, "
                f"computed in {report['compute_seconds']:.1f} s; peak RSS sampled "
                f"{result.pandas.rss_peak / MB:.0f} MB (ru_maxrss {report['maxrss'] / MB:.0f} MB)"
            )
            say(
                f"  same segments, VIP and at-risk counts in the job's rows, the scoring SELECT "
                f"and pandas (customers with purchases): "
                f"{'yes' if result.counts_match else 'NO'}"
            )
            if not result.counts_match:
                say(f"    job rows {sql_counts}\n    SELECT   {select_counts}")
                say(f"    pandas   {report['counts']}")
    if select_counts and sql_counts:
        say(f"  segment sizes: { {code: sql_counts.get(code, 0) for code in SEGMENT_ORDER} }")
    return result


def summary_print(results: list[SizeResult]) -> bool:
    """The results table and the verdicts at the largest size; True when all passed."""
    say("\n== Results")
    say(
        f"  {'customers':>10} {'purchases':>10} {'first s':>8} {'unchanged s':>11}"
        f" {'changed s':>9} {'considered/written':>18} {'nightly s':>9} {'written':>7}"
        f" {'worker MB':>9} {'pandas s':>8} {'pandas MB':>9} {'ratio':>6}"
    )
    for result in results:
        first, unchanged = result.run("first"), result.run("unchanged")
        changed, nightly = result.run("changed"), result.run("nightly")
        pandas = result.pandas.report if result.pandas and not result.pandas.error else {}
        pandas_seconds = pandas.get("seconds", float("nan"))
        pandas_peak = result.pandas.rss_peak / MB if pandas else float("nan")
        touched = changed.rows or {}
        considered = f"{touched.get('considered', 0):,}/{touched.get('written', 0):,}"
        say(
            f"  {result.customers:>10,} {result.purchases:>10,} {first.seconds:>8.1f}"
            f" {unchanged.seconds:>11.1f} {changed.seconds:>9.1f}"
            f" {considered:>18}"
            f" {nightly.seconds:>9.1f} {(nightly.rows or {}).get('written', -1):>7,}"
            f" {result.worker_peak / MB:>9.0f} {pandas_seconds:>8.1f} {pandas_peak:>9.0f}"
            f" {pandas_seconds / nightly.seconds:>5.1f}x"
        )
    say(
        "  (seconds = enqueue to finished in a real worker; first = full, inserting every row;\n"
        "   unchanged = incremental with nothing changed; changed = incremental after the\n"
        "   new orders; nightly = full, every customer considered; worker MB = peak RSS sampled\n"
        "   every 50 ms; pandas = read + compute in its own process, no write-back;\n"
        "   ratio = pandas s / nightly s)"
    )
    say("\n  details")
    say(
        f"  {'customers':>10} {'scoring s':>9} {'pandas/scoring':>14} {'worker VmHWM MB':>15}"
        f" {'backend heap MB':>15} {'temp files MB':>13} {'pandas read s':>13}"
        f" {'compute s':>9} {'ru_maxrss MB':>12}"
    )
    for result in results:
        pandas = result.pandas.report if result.pandas and not result.pandas.error else {}
        nan = float("nan")
        say(
            f"  {result.customers:>10,} {result.select_seconds:>9.1f}"
            f" {pandas.get('seconds', nan) / result.select_seconds:>13.0f}x"
            f" {f'{result.worker_hwm_idle / MB:.0f} -> {result.worker_hwm / MB:.0f}':>15}"
            f" {max((r.backend_heap_peak for r in result.runs), default=0) / MB:>15.0f}"
            f" {max((r.temp_bytes for r in result.runs), default=0) / MB:>13.0f}"
            f" {pandas.get('read_seconds', nan):>13.1f} {pandas.get('compute_seconds', nan):>9.1f}"
            f" {pandas.get('maxrss', 0) / MB:>12.0f}"
        )
    say(
        "  (scoring = the statement's scoring alone, what pandas computes; worker VmHWM = the\n"
        "   worker's lifetime peak RSS before -> after the jobs; backend heap = anonymous memory\n"
        "   of the worker's PostgreSQL backend; temp files = spilled past work_mem, per job)"
    )

    target = results[-1]
    say(f"\n== Targets (at {target.size:,} customers; the issue names 1,000,000)")
    first, changed, nightly = target.run("first"), target.run("changed"), target.run("nightly")
    pandas = target.pandas.report if target.pandas and not target.pandas.error else {}
    pandas_seconds = pandas.get("seconds", float("nan"))
    say(
        f"  (first compute, which inserts every row once: {first.seconds:.1f} s, "
        f"{pandas_seconds / first.seconds:.1f}x faster than pandas)"
    )
    ratio = pandas_seconds / nightly.seconds
    verdicts = [
        (
            f"full recompute (nightly, change-only) {nightly.seconds:.1f} s vs pandas "
            f"{pandas_seconds:.1f} s: {ratio:.1f}x (>= {TARGET_RATIO:.0f}x)",
            nightly.ok and ratio >= TARGET_RATIO,
        ),
        (
            f"after {target.changed:,} customers changed: {changed.seconds:.1f} s "
            f"(<= {TARGET_CHANGED_SECONDS:.0f} s)",
            changed.ok and changed.seconds <= TARGET_CHANGED_SECONDS,
        ),
        (
            "the nightly full run found nothing the incremental runs missed: "
            f"{(nightly.rows or {}).get('written')} rows written (0)",
            nightly.ok and (nightly.rows or {}).get("written") == 0,
        ),
    ]
    if target.counts_match is not None:
        verdicts.append(("same counts as pandas", target.counts_match))
    if len(results) >= 2:
        small = results[0]
        growth = target.worker_peak - small.worker_peak
        verdicts.append(
            (
                f"worker peak RSS {small.size:,} -> {target.size:,}: "
                f"{small.worker_peak / MB:.0f} -> {target.worker_peak / MB:.0f} MB "
                f"({growth / MB:+.0f} MB; flat = within 10 MB or 10 %)",
                growth <= max(10 * MB, 0.10 * small.worker_peak),
            )
        )
    for text, ok in verdicts:
        say(f"  {text}: {'PASS' if ok else 'FAIL'}")
    return all(ok for _, ok in verdicts)


def run(args) -> bool:
    """The whole benchmark; True when the measured targets passed."""
    args.data_dir.mkdir(parents=True, exist_ok=True)
    say("== Servers and schema")
    urls = services(args.data_dir, args.database)
    args.app_role = sa.make_url(urls.database_url).username
    owner = owner_engine_for(urls)
    if args.fresh:
        say("  --fresh: dropping the schema; every size is loaded again")
        schema_rebuild(owner)
    app = portal_app(urls)
    with owner.connect() as connection:
        settings = connection.execute(
            sa.text(
                "SELECT current_setting('server_version'), current_setting('shared_buffers'),"
                " current_setting('work_mem'), current_setting('hash_mem_multiplier'),"
                " current_setting('max_parallel_workers_per_gather')"
            )
        ).one()
    say(
        f"  PostgreSQL {settings[0]}, shared_buffers {settings[1]}, work_mem {settings[2]}, "
        f"hash_mem_multiplier {settings[3]}, parallel workers per gather {settings[4]}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    results = [size_measure(app, urls, owner, size, args) for size in sorted(args.sizes)]
    passed = summary_print(results)
    say(f"  (load average at the end {os.getloadavg()[0]:.1f})")
    return passed


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.segments", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / ".data" / "bench-segments")
    parser.add_argument("--database", default="portal_bench_segments")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[100_000, 1_000_000],
        help="comma-separated customer counts (default 100000,1000000)",
    )
    parser.add_argument("--chunk", type=int, default=100_000, help="customers per load chunk")
    parser.add_argument(
        "--change", type=float, default=0.01, help="share of customers given a new order"
    )
    parser.add_argument("--fresh", action="store_true", help="rebuild the schema, reload")
    parser.add_argument("--job-timeout", type=float, default=900, help="give up on a job, s")
    parser.add_argument("--pandas-timeout", type=float, default=900, help="give up on pandas, s")
    parser.add_argument("--skip-pandas", action="store_true", help="no naive baseline")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE per size")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--pandas-child", type=uuid.UUID, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pandas_child:
        print("BENCH_JSON " + json.dumps(rfm_pandas(args.pandas_child)), flush=True)
        return 0
    return 0 if run(args) else 1


if __name__ == "__main__":
    sys.exit(main())
