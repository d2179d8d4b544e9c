"""Events benchmark: signed tier-event batches over HTTP, applied by real workers, end to end.

`python -m bench.events` starts its own PostgreSQL and Redis under `.data/bench-events` (unless
DATABASE_URL/REDIS_URL are set), rebuilds the `portal_bench_events` schema from the migrations,
loads N customers into one organization, starts K `python worker.py` processes and gunicorn on
127.0.0.1, then POSTs signed batches of 1,000 `pricing.loyalty.tier_changed` events from a few
client threads and waits until no inbox row is left `received`. It prints the HTTP ingest rate,
the end-to-end rate (first POST to last event processed), where the CPU went, and PASS/FAIL
against the product target (10,000 events/s end to end, tiers and orders alike). `--kind orders`
sends order events instead. See docs/benchmarks-worker.md.

The generic helpers here (servers, app, worker and gunicorn processes) are reused by
bench/segments.py.
"""

import argparse
import http.client
import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import sqlalchemy as sa

from bench.harness import (
    PROJECT_ROOT,
    child_environ,
    cpu_seconds,
    gunicorn_start,
    organization_ensure,
    owner_engine_for,
    percentile,
    portal_app,
    postmaster_pid,
    process_tree,
    say,
    schema_rebuild,
    services,
    wait_ready,
)
from portal.embedded import process_stop

ORG_ID = uuid.UUID("00000000-0000-4000-8000-00000000e001")
TIER_EVENT = "pricing.loyalty.tier_changed"
TIERS = ["bronze", "silver", "gold", "platinum"]
TARGET_EVENTS_PER_SECOND = 10_000.0


def worker_start(env: dict, log_path: Path) -> subprocess.Popen:
    """A real `python worker.py` process in its own process group, logging to a file."""
    with log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - fixed interpreter and script
            [sys.executable, str(PROJECT_ROOT / "worker.py")],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_workers_ready(app, count: int, processes: list[subprocess.Popen], log_path: Path):
    """Wait up to 60 s until `count` RQ workers have registered on the portal's queue."""
    from rq import Worker

    from portal.tasks import queue as portal_queue

    deadline = time.monotonic() + 60
    with app.app_context():
        rq_queue = portal_queue()
        while time.monotonic() < deadline:
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"a worker exited during start-up; see {log_path}")
            if len(Worker.all(queue=rq_queue)) >= count:
                return
            time.sleep(0.2)
    raise RuntimeError(f"{count} workers did not register in 60 s; see {log_path}")


# --- data ------------------------------------------------------------------------------------


def customers_load(organization_id: uuid.UUID, count: int, chunk: int = 50_000) -> list[uuid.UUID]:
    """Bulk-load `count` generated customers (portal.seed); return their ids."""
    from portal.seed import customer_rows, customers_bulk_load

    ids: list[uuid.UUID] = []
    for start in range(0, count, chunk):
        rows = list(customer_rows(min(chunk, count - start), start=start))
        customers_bulk_load(organization_id, rows)
        ids += [row[0] for row in rows]
    return ids


def event_batches(
    organization_id: uuid.UUID,
    customer_ids: list[uuid.UUID],
    total: int,
    size: int,
    seed: int,
    kind: str = "tiers",
) -> tuple[list[bytes], dict]:
    """JSON bodies of `size` events each, and the final state they must leave.

    tiers: tier changes; the expected state is each customer's last tier. orders: new completed
    orders, one in five events cancelling an earlier order instead; the expected state is each
    order's (customer, status, completed_at).
    """
    # occurred_at grows with every event, so the last event about a customer (or an order) is
    # the one that must win whichever order the workers apply the batches in.
    rng = random.Random(seed)
    base = datetime.now(UTC) - timedelta(days=1)
    organization = str(organization_id)
    expected: dict = {}
    bodies = []
    for start in range(0, total, size):
        events = []
        for number in range(start, min(start + size, total)):
            occurred = (base + timedelta(milliseconds=number)).isoformat()
            if kind == "tiers":
                customer_id = rng.choice(customer_ids)
                old, new = rng.sample(TIERS, 2)
                expected[customer_id] = new
                event_type = TIER_EVENT
                data = {"customer_id": str(customer_id), "old_tier": old, "new_tier": new}
            elif expected and rng.random() < 0.2:
                order_id = rng.choice(list(expected)[-5000:])
                customer_id, _, completed_at = expected[order_id]
                expected[order_id] = (customer_id, "cancelled", completed_at)
                event_type = "orders.order.cancelled"
                data = _order_data(order_id, customer_id, completed_at)
            else:
                order_id, customer_id = (
                    uuid.UUID(int=rng.getrandbits(128) | (4 << 76)),
                    rng.choice(customer_ids),
                )
                expected[order_id] = (customer_id, "completed", occurred)
                event_type = "orders.order.completed"
                data = _order_data(order_id, customer_id, occurred)
            events.append(
                {
                    "event_id": str(uuid.UUID(int=rng.getrandbits(128) | (4 << 76))),
                    "event_type": event_type,
                    "occurred_at": occurred,
                    "organization_id": organization,
                    "data": data,
                }
            )
        bodies.append(json.dumps(events, separators=(",", ":")).encode())
    return bodies, expected


def _order_data(order_id: uuid.UUID, customer_id: uuid.UUID, completed_at: str) -> dict:
    total = f"{(order_id.int % 50_000) / 100 + 1:.2f}"
    return {
        "order_id": str(order_id),
        "customer_id": str(customer_id),
        "total": total,
        "completed_at": completed_at,
    }


# --- load ------------------------------------------------------------------------------------


@dataclass
class ClientResult:
    """What the client threads saw."""

    latencies_ms: list[float] = field(default_factory=list)
    accepted: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_batches(port: int, bodies: list[bytes], clients: int, secret: str, deadline: float):
    """POST every body once from `clients` keep-alive connections; signed at send time."""
    from portal.events.ingest import signature_for

    pending: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        pending.put(body)
    result = ClientResult()

    def client() -> None:
        """One keep-alive connection taking bodies off the queue until it is empty."""
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.monotonic() < deadline:
            try:
                body = pending.get_nowait()
            except queue.Empty:
                break
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Timestamp": stamp,
                "X-Signature": signature_for(secret, stamp, body),
            }
            started = time.perf_counter()
            try:
                connection.request("POST", "/api/events", body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                with result.lock:
                    result.errors.append(f"{type(error).__name__}: {error}")
                continue
            elapsed = (time.perf_counter() - started) * 1000
            accepted = 0
            if response.status == 202:
                statuses = [item["status"] for item in json.loads(payload)["results"]]
                accepted = statuses.count("accepted")
            with result.lock:
                result.latencies_ms.append(elapsed)
                result.accepted += accepted
                if response.status != 202:
                    result.errors.append(f"HTTP {response.status}: {payload[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 1)
    return result


def inbox_counts(owner_engine: sa.Engine, organization_id: uuid.UUID) -> dict[str, int]:
    """Inbox rows by status, read as the owner (it has a SELECT policy on event_inbox)."""
    with owner_engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT status, count(*) FROM event_inbox WHERE organization_id = :org"
                " GROUP BY status"
            ),
            {"org": organization_id},
        ).all()
    return {status: count for status, count in rows}


def received_count(connection: sa.Connection, organization_id: uuid.UUID) -> int:
    """Rows still waiting for a worker (the partial index idx_inbox_pending keeps this cheap)."""
    return connection.scalar(
        sa.text(
            "SELECT count(*) FROM event_inbox WHERE organization_id = :org AND status = 'received'"
        ),
        {"org": organization_id},
    )


def tiers_check(app, organization_id: uuid.UUID, expected: dict[uuid.UUID, str]) -> int:
    """Customers whose tier is not the one of their latest event (read as the app role)."""
    from portal.db import organization_scope
    from portal.extensions import db

    with app.app_context(), organization_scope(organization_id):
        actual = dict(
            db.session.execute(
                sa.text(
                    "SELECT customer_id, loyalty_tier FROM customers"
                    " WHERE loyalty_tier_changed_at IS NOT NULL"
                )
            ).all()
        )
        db.session.rollback()
    wrong = sum(1 for customer_id, tier in expected.items() if actual.get(customer_id) != tier)
    return wrong + len(set(actual) - set(expected))


# Summaries whose values differ from the completed purchases re-aggregated (either side missing
# counts too, except a summary with no purchases left).
SUMMARIES_WRONG = """
    SELECT count(*) FROM purchase_summaries s
    FULL JOIN (SELECT customer_id, count(*) AS orders, sum(total) AS lifetime_value,
                      min(completed_at) AS first_at, max(completed_at) AS last_at
               FROM purchases WHERE status = 'completed' GROUP BY customer_id) p
      ON p.customer_id = s.customer_id
    WHERE (s.orders, s.lifetime_value, s.first_purchase_at, s.last_purchase_at)
          IS DISTINCT FROM (p.orders, p.lifetime_value, p.first_at, p.last_at)
      AND NOT (p.customer_id IS NULL AND s.orders = 0)
"""


def orders_check(app, organization_id: uuid.UUID, expected: dict) -> int:
    """Orders whose stored status is not their latest event's, customers whose last purchase is
    not their latest completed order, and purchase summaries that differ from a re-aggregation
    of the purchases (read as the app role)."""
    from portal.db import organization_scope
    from portal.extensions import db

    with app.app_context(), organization_scope(organization_id):
        stored = dict(db.session.execute(sa.text("SELECT order_id, status FROM purchases")).all())
        last = dict(
            db.session.execute(sa.text("SELECT customer_id, last_purchase_at FROM customers")).all()
        )
        summaries_wrong = db.session.scalar(sa.text(SUMMARIES_WRONG))
        db.session.rollback()
    wrong = sum(
        1 for order_id, (_, status, _) in expected.items() if stored.get(order_id) != status
    )
    latest: dict = {customer_id: None for customer_id, _, _ in expected.values()}
    for customer_id, status, completed_at in expected.values():
        if status == "completed":
            when = datetime.fromisoformat(completed_at)
            latest[customer_id] = max(latest[customer_id] or when, when)
    # Customers the run sent no order for keep the last purchase the seed data gave them.
    wrong += sum(1 for customer_id, when in latest.items() if last.get(customer_id) != when)
    return wrong + len(set(stored) - set(expected)) + summaries_wrong


@dataclass
class LoadResult:
    """What one load run measured."""

    client: ClientResult
    ingest_seconds: float
    e2e_seconds: float
    backlog_peak: int
    polls: int
    cpu: dict[str, float]
    apply_seconds: float | None = None


def load_run(app, owner, urls, bodies: list[bytes], secret: str, args) -> LoadResult:
    """Start gunicorn and the workers, POST every batch, wait until nothing is 'received'."""
    from portal.embedded import free_port

    env = child_environ(urls, args.log_level)
    port = free_port()
    worker_log = args.data_dir / "workers.log"
    web_log = args.data_dir / "gunicorn.log"
    processes: list[subprocess.Popen] = []
    say(
        f"\n== Processes: gunicorn {args.web_workers} x {args.threads} threads on "
        f"127.0.0.1:{port}, {args.workers} worker.py (logs in {args.data_dir})"
    )
    try:
        web = gunicorn_start(port, env, web_log, workers=args.web_workers, threads=args.threads)
        processes.append(web)
        workers: list[subprocess.Popen] = []

        def workers_start() -> float:
            """Start the workers; when they are ready (with --phased: after the last POST)."""
            workers.extend(worker_start(env, worker_log) for _ in range(args.workers))
            processes.extend(workers)
            wait_workers_ready(app, args.workers, workers, worker_log)
            return time.perf_counter()

        wait_ready(port, "/healthz", web, web_log)
        if not args.phased:
            workers_start()
        with owner.connect() as connection:
            poller_pid = connection.scalar(sa.text("SELECT pg_backend_pid()"))
            connection.rollback()
            postmaster = postmaster_pid(connection)
            groups = {
                "gunicorn": lambda: process_tree(web),
                "workers": lambda: [p for w in workers for p in process_tree(w)],
                "postgres": lambda: [
                    p
                    for p in (process_tree(postmaster) if postmaster else [])
                    if p.pid != poller_pid
                ],
                "poll backend": lambda: process_tree(poller_pid),
                "bench client": lambda: [psutil.Process()],
            }
            cpu_before = {name: cpu_seconds(find()) for name, find in groups.items()}
            say(f"\n== Load: {args.clients} client threads POSTing {len(bodies)} batches")
            deadline = time.monotonic() + args.timeout
            outcome: dict = {}
            backlog_peak = polls = 0
            applying = None
            started = time.perf_counter()
            poster = threading.Thread(
                target=lambda: outcome.update(
                    result=post_batches(port, bodies, args.clients, secret, deadline),
                    finished=time.perf_counter(),
                ),
                daemon=True,
            )
            poster.start()
            while time.monotonic() < deadline:
                waiting = received_count(connection, ORG_ID)
                connection.rollback()
                polls += 1
                backlog_peak = max(backlog_peak, waiting)
                if "finished" in outcome and args.phased and applying is None:
                    applying = workers_start()
                    continue
                if "finished" in outcome and waiting == 0:
                    break
                time.sleep(args.poll)
            done = time.perf_counter()
            poster.join(5)
            cpu = {name: cpu_seconds(find()) - cpu_before[name] for name, find in groups.items()}
    finally:
        for process in processes:
            process_stop(process)
    return LoadResult(
        outcome.get("result") or ClientResult(),
        outcome.get("finished", done) - started,
        done - started,
        backlog_peak,
        polls,
        cpu,
        done - applying if applying else None,
    )


def table_activity(owner: sa.Engine) -> list[tuple]:
    """Row updates, HOT updates and dead rows of the tables the run writes."""
    with owner.connect() as connection:
        connection.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        return connection.execute(
            sa.text(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup,"
                " (SELECT count(*) FROM pg_index i WHERE i.indrelid = s.relid)"
                " FROM pg_stat_user_tables s"
                " WHERE relname IN ('customers', 'event_inbox', 'purchases', 'purchase_summaries')"
                " ORDER BY relname"
            )
        ).all()


def run(args) -> bool:
    """The whole benchmark; True when the end-to-end target passed."""
    args.data_dir.mkdir(parents=True, exist_ok=True)
    say("== Servers and schema")
    urls = services(args.data_dir, args.database)
    owner = owner_engine_for(urls)
    schema_rebuild(owner)
    app = portal_app(urls)
    with owner.connect() as connection:
        version = connection.scalar(sa.text("SHOW server_version"))
    say(
        f"  PostgreSQL {version}; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f} before the run"
    )

    say(f"\n== Data: {args.customers:,} customers, {args.events:,} {args.kind} events")
    started = time.perf_counter()
    with app.app_context():
        organization_ensure(ORG_ID, "Bench Eventos PA")
        customer_ids = customers_load(ORG_ID, args.customers)
        secret = app.config["EVENTS_SECRET"]
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM (ANALYZE) customers")
    bodies, expected = event_batches(
        ORG_ID, customer_ids, args.events, args.batch, args.seed, args.kind
    )
    say(
        f"  loaded in {time.perf_counter() - started:.1f} s; {len(bodies)} bodies of "
        f"{args.batch} events (~{sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB each), "
        f"{len(expected):,} distinct customers"
    )

    load = load_run(app, owner, urls, bodies, secret, args)
    client = load.client
    counts = inbox_counts(owner, ORG_ID)
    processed = counts.get("processed", 0)
    check = tiers_check if args.kind == "tiers" else orders_check
    wrong = check(app, ORG_ID, expected) if processed else None
    complete = processed == args.events and not client.errors
    say(
        f"  requests: {len(client.latencies_ms)} answered, {client.accepted:,} events accepted, "
        f"{len(client.errors)} errors"
    )
    for error in client.errors[:5]:
        say(f"    {error}")
    say(
        f"  request latency p50 {percentile(client.latencies_ms, 50):.0f} ms, "
        f"p95 {percentile(client.latencies_ms, 95):.0f} ms, "
        f"max {max(client.latencies_ms, default=float('nan')):.0f} ms"
    )
    say(f"  inbox at the end: {counts}")
    say(f"  largest backlog seen (rows 'received'): {load.backlog_peak:,} ({load.polls} polls)")
    if wrong is not None:
        say(f"  {args.kind} whose final state is not their latest event's: {wrong}")

    say("\n== CPU seconds used during the run (2 cores = 2 CPU-seconds per second at most)")
    for name, seconds in load.cpu.items():
        say(
            f"  {name:<13} {seconds:7.1f} s  ({seconds / load.e2e_seconds * 100:5.1f} % of one "
            f"core, {seconds / args.events * 1e6:5.0f} µs per event)"
        )
    total = sum(load.cpu.values())
    say(
        f"  {'total':<13} {total:7.1f} s  ({total / load.e2e_seconds * 100:5.1f} % of one core); "
        f"load average {os.getloadavg()[0]:.1f} after the run"
    )
    say("\n== Table activity (since the schema was built)")
    say(
        f"  {'table':<18} {'inserts':>9} {'updates':>9} {'HOT':>7} {'dead rows':>10} {'indexes':>8}"
    )
    for name, inserts, updates, hot, dead, indexes in table_activity(owner):
        say(f"  {name:<18} {inserts:>9,} {updates:>9,} {hot:>7,} {dead:>10,} {indexes:>8}")

    ingest_rate = args.events / load.ingest_seconds if load.ingest_seconds else 0.0
    e2e_rate = processed / load.e2e_seconds if complete and load.e2e_seconds else 0.0
    correct = complete and wrong == 0 and not counts.get("dead")
    passed = correct and e2e_rate >= TARGET_EVENTS_PER_SECOND and not args.phased
    say("\n== Summary" + (" (phased: workers started after the last POST)" if args.phased else ""))
    say(f"  {'measure':<44} {'value':>16}  {'target':>12}  verdict")
    rows = [("ingest over HTTP (first POST to last 202)", f"{ingest_rate:,.0f} events/s", "", "")]
    if load.apply_seconds:
        rows.append(
            (
                "apply alone (workers ready to all processed)",
                f"{processed / load.apply_seconds:,.0f} events/s",
                "",
                "",
            )
        )
    else:
        rows += [
            ("drain after the last 202", f"{load.e2e_seconds - load.ingest_seconds:.1f} s", "", ""),
            (
                "end to end (first POST to all processed)",
                f"{e2e_rate:,.0f} events/s",
                f">= {TARGET_EVENTS_PER_SECOND:,.0f}/s",
                "PASS" if passed else "FAIL",
            ),
        ]
    rows.append(
        (
            f"events processed / dead / {args.kind} wrong",
            f"{processed:,} / {counts.get('dead', 0)} / {wrong}",
            f"{args.events:,} / 0 / 0",
            "PASS" if correct else "FAIL",
        )
    )
    for name, value, target, verdict in rows:
        say(f"  {name:<44} {value:>16}  {target:>12}  {verdict}")
    say(
        f"  ({args.events:,} events in {load.e2e_seconds:.1f} s; {args.workers} workers, "
        f"gunicorn {args.web_workers}x{args.threads}, {args.clients} clients, "
        f"{args.customers:,} customers)"
    )
    if args.phased:
        return correct
    return passed


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / ".data" / "bench-events")
    parser.add_argument("--database", default="portal_bench_events")
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="events per request (max 1000)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=2, help="worker.py processes")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--timeout", type=float, default=600, help="give up after this many s")
    parser.add_argument("--poll", type=float, default=0.25, help="inbox poll interval, s")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of web and workers")
    parser.add_argument(
        "--phased",
        action="store_true",
        help="diagnosis: start the workers only after the last POST (no end-to-end verdict)",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--kind",
        choices=["tiers", "orders"],
        default="tiers",
        help="tier changes, or orders completed (4 in 5) and cancelled (1 in 5)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be between 1 and 1000")
    return 0 if run(args) else 1


if __name__ == "__main__":
    sys.exit(main())
