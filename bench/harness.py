"""What every benchmark shares: servers, the migrated app, gunicorn, logging in, HTTP timing with
one connection, wrk with several, the bare-Flask baseline (optionally both through pgbouncer),
percentiles, and the PASS/FAIL table.

Also the one place that writes credit data straight into the tables (accounts, charges,
payments, allocations) for the page benchmarks, so a change of the credit schema is adapted here
only.
"""

import argparse
import http.client
import json
import math
import os
import re
import resource
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import psutil
import sqlalchemy as sa

from portal.embedded import gunicorn_command, process_stop

PROJECT_ROOT = Path(__file__).resolve().parent.parent
USER_AGENT = "portal-bench/1.0"  # Flask-Login's "strong" session protection hashes the agent
CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def say(*parts) -> None:
    """Print and flush, so progress shows up under make and when piped to a file."""
    print(*parts, flush=True)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)]


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


# --- servers and the app ---------------------------------------------------------------------


def services(data_dir: Path, database: str):
    """Start (or reuse) the servers; refuse a database whose name does not say 'bench'."""
    from portal.embedded import services_start

    data_dir.mkdir(parents=True, exist_ok=True)
    urls = services_start(data_dir, database=database)
    name = sa.make_url(urls.database_url).database or ""
    if "bench" not in name:
        raise SystemExit(f"Refusing to benchmark against database {name!r} (no 'bench' in it)")
    return urls


def owner_engine_for(urls) -> sa.Engine:
    """An engine connected as the owner role (schema, VACUUM, inspection)."""
    return sa.create_engine(urls.database_owner_url, poolclass=sa.pool.NullPool)


def schema_rebuild(owner_engine: sa.Engine) -> None:
    """Drop and recreate the public schema, as the test suite does, so the run starts empty."""
    with owner_engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")


def portal_app(urls, *, migrate: bool = True):
    """The portal connected as the app role (TestingConfig), migrated to the latest revision."""
    from flask_migrate import upgrade

    from portal import create_app
    from portal.config import TestingConfig

    config = TestingConfig(
        SQLALCHEMY_DATABASE_URI=urls.database_url,
        DATABASE_OWNER_URL=urls.database_owner_url,
        REDIS_URL=urls.redis_url,
        LOG_LEVEL="WARNING",
    )
    app = create_app(config)
    if migrate:
        with app.app_context():
            upgrade()
    return app


def child_environ(urls, log_level: str = "WARNING") -> dict[str, str]:
    """Environment for the worker and gunicorn processes (testing settings, our servers)."""
    return os.environ | urls.environ() | {"PORTAL_ENV": "testing", "LOG_LEVEL": log_level}


def organization_ensure(organization_id: uuid.UUID, name: str) -> None:
    """Create the organization unless it exists (inside the app context)."""
    from portal.auth.models import Organization
    from portal.db import organization_scope
    from portal.extensions import db

    with organization_scope(organization_id):
        if db.session.get(Organization, organization_id) is None:
            db.session.add(Organization(organization_id=organization_id, name=name))
        db.session.commit()


def staff_ensure(organization_id: uuid.UUID, email: str, password: str, roles: list[str]):
    """Create a staff user with these roles unless present (inside the app context)."""
    from portal.auth.models import StaffUser
    from portal.auth.services import password_hash
    from portal.db import organization_scope
    from portal.extensions import db

    with organization_scope(organization_id):
        user = db.session.scalar(sa.select(StaffUser).where(StaffUser.email == email))
        if user is None:
            user = StaffUser(
                email=email, full_name="Persona Benchmark", password_hash=password_hash(password)
            )
            db.session.add(user)
        user.roles = roles
        db.session.commit()
        return user.staff_user_id


# --- where the CPU goes ------------------------------------------------------------------------


def process_tree(process: subprocess.Popen | int) -> list[psutil.Process]:
    """A process we started and its descendants (gone ones are skipped)."""
    try:
        root = psutil.Process(process if isinstance(process, int) else process.pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """CPU seconds (user + system) of the processes and of their children that have exited."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def postmaster_pid(connection: sa.Connection) -> int | None:
    """The PostgreSQL server's pid (the parent of this connection's backend), if local."""
    backend = connection.scalar(sa.text("SELECT pg_backend_pid()"))
    try:
        parent = psutil.Process(backend).parent()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return parent.pid if parent is not None and parent.name() == "postgres" else None


# Process groups whose CPU every wrk run reports per request: each served port's gunicorn and
# the servers every request goes through (PostgreSQL, pgbouncer); filled by portal_and_baseline
# and pgbouncer_in_front while they run. wrk's own CPU is this process's exited children's.
_SERVED_BY: dict[int, subprocess.Popen] = {}
_SHARED_SERVERS: dict[str, Callable[[], list[psutil.Process]]] = {}


def _cpu_now(port: int) -> dict[str, float] | None:
    """CPU seconds so far of the processes that serve `port`, by group (None if not watched)."""
    if port not in _SERVED_BY:
        return None
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "gunicorn": cpu_seconds(process_tree(_SERVED_BY[port])),
        **{name: cpu_seconds(find()) for name, find in _SHARED_SERVERS.items()},
        "wrk": children.ru_utime + children.ru_stime,
    }


# --- gunicorn, login, HTTP timing ------------------------------------------------------------


def gunicorn_start(
    port: int, env: dict, log_path: Path, *, workers: int, threads: int, target="portal.wsgi:app"
) -> subprocess.Popen:
    """gunicorn serving `target` on 127.0.0.1:port in its own process group, logging to a file."""
    with log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - fixed interpreter and arguments
            gunicorn_command(port, workers=workers, threads=threads, target=target),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(port: int, path: str, process: subprocess.Popen, log_path: Path) -> None:
    """Wait up to 60 s for a 200 on path; fail early if the server died."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log_path}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"gunicorn on port {port} did not answer {path} in 60 s; see {log_path}")


@dataclass(frozen=True)
class Servers:
    """The portal and the bare-Flask baseline, served by gunicorn side by side."""

    portal_port: int
    baseline_port: int
    portal_log: Path


def _pgbouncer_wait(process: subprocess.Popen, url: sa.URL, directory: Path) -> None:
    """Wait up to 30 s for a query as the app role to go through pgbouncer to PostgreSQL."""
    import psycopg

    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}; see {directory}")
        try:
            with psycopg.connect(conninfo, connect_timeout=2) as connection:
                connection.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def pgbouncer_in_front(urls, data_dir: Path):
    """pgbouncer in transaction pooling mode on a free 127.0.0.1 port in front of the app role's
    PostgreSQL (bin/pgbouncer-start, as in .ci/run); yields urls whose DATABASE_URL goes through
    it, and stops it on the way out, whatever happens."""
    from portal.embedded import free_port

    subprocess.run([PROJECT_ROOT / "bin" / "ensure-pgbouncer"], check=True)  # noqa: S603
    server = sa.make_url(urls.database_url)
    host = server.host or server.query.get("host") or "/var/run/postgresql"
    directory = data_dir / "pgbouncer"
    directory.mkdir(mode=0o700, exist_ok=True)
    pooled = server.set(host="127.0.0.1", port=free_port(), query={})
    process = subprocess.Popen(  # noqa: S603 - our script, fixed arguments
        [
            PROJECT_ROOT / "bin" / "pgbouncer-start",
            directory,
            str(pooled.port),
            server.username,
            server.database,
            host,
            str(server.port or 5432),
            "-q",  # everything goes to its log file, as with -d
        ],
        env=os.environ | ({"PGPASSWORD": server.password} if server.password else {}),
        start_new_session=True,
    )
    _SHARED_SERVERS["pgbouncer"] = lambda: process_tree(process)
    try:
        _pgbouncer_wait(process, pooled, directory)
        say(
            f"  pgbouncer (transaction pooling) on 127.0.0.1:{pooled.port} in front of "
            f"{host}:{server.port or 5432}/{server.database}; log in {directory}"
        )
        yield replace(urls, database_url=pooled.render_as_string(hide_password=False))
    finally:
        _SHARED_SERVERS.pop("pgbouncer", None)
        process_stop(process)


@contextmanager
def portal_and_baseline(urls, data_dir: Path, *, workers: int, threads: int, pgbouncer=False):
    """Serve portal.wsgi:app and bench/baseline_app.py with the same settings; stop both after.

    With pgbouncer, both connect as the app role through pgbouncer_in_front, prepared statements
    off (DATABASE_TRANSACTION_POOLER), so the ratio to the baseline stays like for like."""
    from portal.embedded import free_port

    with pgbouncer_in_front(urls, data_dir) if pgbouncer else nullcontext(urls) as urls:
        env = os.environ | urls.environ() | {"PORTAL_ENV": "development"}
        if pgbouncer:
            env["DATABASE_TRANSACTION_POOLER"] = "1"
        servers = Servers(free_port(), free_port(), data_dir / "gunicorn-portal.log")
        baseline_log = data_dir / "gunicorn-baseline.log"
        processes = []
        try:
            processes.append(
                gunicorn_start(
                    servers.portal_port, env, servers.portal_log, workers=workers, threads=threads
                )
            )
            processes.append(
                gunicorn_start(
                    servers.baseline_port,
                    env,
                    baseline_log,
                    workers=workers,
                    threads=threads,
                    target="bench.baseline_app:app",
                )
            )
            wait_ready(servers.portal_port, "/healthz", processes[0], servers.portal_log)
            wait_ready(servers.baseline_port, "/", processes[1], baseline_log)
            _SERVED_BY.update(
                {servers.portal_port: processes[0], servers.baseline_port: processes[1]}
            )
            postmaster = _postmaster_of(urls)
            if postmaster:
                _SHARED_SERVERS["PostgreSQL"] = lambda: process_tree(postmaster)
            yield servers
        finally:
            _SERVED_BY.clear()
            _SHARED_SERVERS.pop("PostgreSQL", None)
            for process in processes:
                process_stop(process)


def _postmaster_of(urls) -> int | None:
    """The local PostgreSQL server's pid, found through the owner's connection."""
    engine = owner_engine_for(urls)
    try:
        with engine.connect() as connection:
            return postmaster_pid(connection)
    finally:
        engine.dispose()


def _cookie_update(jar: SimpleCookie, response: http.client.HTTPResponse) -> None:
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)


def login(port: int, email: str, password: str) -> str:
    """Log in through the real form; the Cookie header to send afterwards."""
    jar = SimpleCookie()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/login", headers={"User-Agent": USER_AGENT})
    response = connection.getresponse()
    page = response.read().decode()
    _cookie_update(jar, response)
    token = CSRF_INPUT.search(page)
    if response.status != 200 or not token:
        raise RuntimeError(f"GET /login answered {response.status} without a CSRF token")
    cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items())
    form = {"csrf_token": token.group(1), "email": email, "password": password}
    connection.request(
        "POST",
        "/login",
        body=urlencode(form),
        headers={
            "User-Agent": USER_AGENT,
            "Cookie": cookie,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    response = connection.getresponse()
    response.read()
    _cookie_update(jar, response)
    if response.status != 302:
        raise RuntimeError(f"POST /login answered {response.status}, expected a 302 redirect")
    return "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items())


def page_headers(cookie: str, *, htmx: bool = False) -> dict[str, str]:
    """A logged-in browser's headers (and htmx's, for partials)."""
    headers = {"Cookie": cookie, "User-Agent": USER_AGENT}
    return headers | {"HX-Request": "true"} if htmx else headers


def http_timings(
    port: int, paths: list[str], headers: dict, samples: int, check=None, *, timeout: float = 30
):
    """`samples` sequential GETs rotating through paths on one keep-alive connection (ms).

    Every path is fetched once first (warm-up); `check(path, status, body)` may raise."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def fetch(path: str) -> float:
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        if check:
            check(path, response.status, body)
        return elapsed

    for path in paths:
        fetch(path)
    return [fetch(paths[number % len(paths)]) for number in range(samples)]


# --- wrk -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    label: str
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    statuses: Counter
    cpu_us: dict[str, float]  # CPU microseconds per request by process group (if watched)

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


# Every wrk script ends with this: the figures as one JSON line (a %-template, hence %%).
WRK_DONE = """
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %%d, "duration_us": %%d, "errors": %%d,' ..
    ' "p50_us": %%d, "p95_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration,
    errors.connect + errors.read + errors.write + errors.status + errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""
WRK_SCRIPT = (
    """
local paths = {%(paths)s}
local headers = {%(headers)s}
local thread_count = 0
local position = nil

function setup(thread)
  thread:set("start", thread_count * 37)
  thread_count = thread_count + 1
end

function request()
  position = ((position or start or 0) %% #paths) + 1
  return wrk.format("GET", paths[position], headers)
end
"""
    + WRK_DONE
)


def _lua_string(text: str) -> str:
    if not text.isascii() or '"' in text or "\\" in text:
        raise ValueError(f"not a plain ASCII Lua string: {text!r}")
    return f'"{text}"'


def log_statuses(log_path: Path, offset: int) -> Counter:
    """HTTP statuses of the portal's request log lines written after `offset`."""
    statuses = Counter()
    with log_path.open("rb") as log:
        log.seek(offset)
        for line in log:
            if b'"message": "request"' in line:
                try:
                    statuses[json.loads(line)["status"]] += 1
                except (ValueError, KeyError):
                    continue
    return statuses


def wrk_run(label: str, port: int, paths: list[str], headers: dict, connections: int, args, log):
    """GET paths in rotation with wrk for args.duration seconds (see wrk_script_run)."""
    script = WRK_SCRIPT % {
        "paths": ", ".join(_lua_string(path) for path in paths),
        "headers": lua_table(headers),
    }
    return wrk_script_run(label, port, script, connections, args, log)


def lua_table(values: dict[str, str]) -> str:
    """The inside of a Lua table literal of plain ASCII strings."""
    return ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in values.items())


def wrk_script_run(
    label: str, port: int, script: str, connections: int, args, log, *, expected=(200,)
):
    """Drive 127.0.0.1:port with a wrk Lua script (ending with WRK_DONE) for args.duration s.

    Answers other than `expected` are counted from the portal's request log `log`."""
    offset = log.stat().st_size if log else 0
    cpu_before = _cpu_now(port)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        completed = subprocess.run(  # noqa: S603 - fixed binary, loopback URL
            [
                args.wrk,
                "-t",
                str(min(args.wrk_threads, connections)),
                "-c",
                str(connections),
                "-d",
                f"{args.duration}s",
                "--timeout",
                "10s",
                "-s",
                handle.name,
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=args.duration + 60,
            check=False,
        )
    finally:
        os.unlink(handle.name)
    cpu_after = _cpu_now(port)
    line = next(
        (line for line in completed.stdout.splitlines() if line.startswith("BENCH_JSON ")), None
    )
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    result = WrkResult(
        label,
        connections,
        data["requests"],
        data["duration_us"] / 1e6,
        data["p50_us"] / 1000,
        data["p95_us"] / 1000,
        data["p99_us"] / 1000,
        data["errors"],
        log_statuses(log, offset) if log else Counter(),
        {name: (cpu_after[name] - cpu_before[name]) / data["requests"] * 1e6 for name in cpu_after}
        if cpu_before and data["requests"]
        else {},
    )
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(result.statuses.items()))
    say(
        f"  {label:<40} c={connections:<2} {result.rps:8.1f} req/s   p50 {result.p50_ms:7.1f}"
        f"   p95 {result.p95_ms:7.1f}   p99 {result.p99_ms:7.1f} ms   errors {result.errors}"
        + (f"   statuses {{{statuses}}}" if statuses else "")
    )
    if result.cpu_us:
        total = sum(result.cpu_us.values())
        groups = ", ".join(f"{name} {us:,.0f}" for name, us in result.cpu_us.items())
        say(
            f"  {'':<40} CPU µs per request: {groups} = {total:,.0f}"
            f" ({os.cpu_count()} cores allow ≤ {os.cpu_count() * 1e6 / total:,.0f} req/s)"
        )
    if set(result.statuses) - set(expected):
        say(f"  WARNING: {label} got unexpected statuses: {dict(result.statuses)}")
    return result


def wrk_warm_up(servers: Servers, paths: list[str], headers: dict, args) -> None:
    """A short c=1 run against both servers, not counted (caches, connection pools)."""
    warm = argparse.Namespace(**(vars(args) | {"duration": min(5, args.duration)}))
    wrk_run("warm-up (not counted)", servers.baseline_port, ["/"], {}, 1, warm, None)
    wrk_run("warm-up (not counted)", servers.portal_port, paths, headers, 1, warm, None)


def wrk_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every HTTP benchmark takes (gunicorn and wrk settings)."""
    import shutil

    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (loaded)")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="the portal and the baseline connect through pgbouncer (transaction pooling)",
    )


# --- the targets table -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One row of a summary: what, measured, goal, PASS/FAIL ('-' for information only)."""

    name: str
    measured: str
    goal: str
    result: str

    @classmethod
    def at_most(cls, name: str, value: float, goal: float, unit: str = "ms") -> "Target":
        """A latency-like target: value <= goal."""
        return cls(name, f"{value:.1f} {unit}", f"<= {goal:g} {unit}", verdict(value <= goal))

    @classmethod
    def ratio(cls, name: str, run: WrkResult, baseline: WrkResult, goal: float) -> "Target":
        """Throughput against the baseline measured in the same run: ratio >= goal."""
        ratio = run.rps / baseline.rps if baseline.rps else 0.0
        return cls(
            name,
            f"{ratio:.2f} ({run.rps:.0f} / {baseline.rps:.0f} req/s)",
            f">= {goal:.2f}",
            verdict(ratio >= goal),
        )


def targets_print(title: str, targets: list[Target]) -> bool:
    """Print the table; True when no target failed."""
    width = max(len(target.name) for target in targets)
    measured = max(len(target.measured) for target in targets)
    goal = max(len(target.goal) for target in targets)
    say(f"\n== {title}")
    say(f"  {'target':<{width}}  {'measured':<{measured}}  {'goal':<{goal}}  result")
    say(f"  {'-' * width}  {'-' * measured}  {'-' * goal}  ------")
    for target in targets:
        say(
            f"  {target.name:<{width}}  {target.measured:<{measured}}  "
            f"{target.goal:<{goal}}  {target.result}"
        )
    return all(target.result != "FAIL" for target in targets)


# --- credit data, written straight into the tables -------------------------------------------


def credit_account_load(
    owner_engine: sa.Engine,
    organization_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    charges: int,
    payments: int,
    staff_id: uuid.UUID,
) -> uuid.UUID:
    """An approved account with `charges` charges, `payments` of them paid in full by one
    payment each (with its allocation); the rest outstanding, some overdue. Ledger-consistent:
    credit_used is the sum of what is outstanding. Returns the account id."""
    if payments > charges:
        raise ValueError("every payment pays one charge")
    account_id = uuid.uuid4()
    with owner_engine.begin() as connection:
        _scope(connection, organization_id)
        connection.execute(
            sa.text(
                """
                CREATE TEMP TABLE bench_charges ON COMMIT DROP AS
                SELECT gen_random_uuid() AS usage_id, n,
                       (10 + (n * 37) % 400)::numeric(12, 2) AS amount,
                       now() - make_interval(days => :charges - n) AS created_at,
                       (current_date - (:charges - n) + 30) AS due_date
                FROM generate_series(1, :charges) AS n
                """
            ),
            {"charges": charges},
        )
        connection.execute(
            sa.text(
                """
                INSERT INTO credit_accounts (organization_id, credit_account_id, customer_id,
                    credit_limit, credit_used, payment_term_days, status, approved_at,
                    approved_by, created_at)
                SELECT :org, :account, :customer,
                       (SELECT sum(amount) FROM bench_charges) + 1000,
                       (SELECT coalesce(sum(amount), 0) FROM bench_charges WHERE n > :payments),
                       30, 'approved', current_date - :charges, :staff,
                       now() - make_interval(days => :charges + 1)
                """
            ),
            {
                "org": organization_id,
                "account": account_id,
                "customer": customer_id,
                "payments": payments,
                "charges": charges,
                "staff": staff_id,
            },
        )
        connection.execute(
            sa.text(
                """
                INSERT INTO credit_usages (organization_id, usage_id, credit_account_id,
                    order_id, amount, status, due_date, paid_at, created_at, created_by)
                SELECT :org, usage_id, :account, gen_random_uuid(), amount,
                       CASE WHEN n <= :payments THEN 'paid'
                            WHEN due_date < current_date THEN 'overdue' ELSE 'pending' END,
                       due_date, CASE WHEN n <= :payments THEN created_at + interval '5 days' END,
                       created_at, :staff
                FROM bench_charges
                """
            ),
            {
                "org": organization_id,
                "account": account_id,
                "payments": payments,
                "staff": staff_id,
            },
        )
        connection.execute(
            sa.text(
                """
                WITH paid AS (
                    SELECT usage_id, amount, created_at, gen_random_uuid() AS payment_id
                    FROM bench_charges WHERE n <= :payments
                ),
                made AS (
                    INSERT INTO credit_payments (organization_id, payment_id, credit_account_id,
                        amount, payment_method, payment_reference, payment_date, created_at,
                        idempotency_key, created_by)
                    SELECT :org, payment_id, :account, amount, 'cash', 'bench',
                           (created_at + interval '5 days')::date,
                           created_at + interval '5 days', gen_random_uuid(), :staff
                    FROM paid
                )
                INSERT INTO credit_payment_allocations (organization_id, payment_id, usage_id,
                    amount, created_at)
                SELECT :org, payment_id, usage_id, amount, created_at + interval '5 days'
                FROM paid
                """
            ),
            {
                "org": organization_id,
                "account": account_id,
                "payments": payments,
                "staff": staff_id,
            },
        )
    return account_id


def credit_requests_load(
    owner_engine: sa.Engine, organization_id: uuid.UUID, customer_ids: list, staff_id: uuid.UUID
) -> None:
    """A pending credit request (the approval queue) for each of these customers."""
    with owner_engine.begin() as connection:
        _scope(connection, organization_id)
        connection.execute(
            sa.text(
                """
                WITH accounts AS (
                    INSERT INTO credit_accounts (organization_id, customer_id, credit_limit,
                        payment_term_days, status)
                    SELECT :org, customer_id, 0, 30, 'pending'
                    FROM unnest(CAST(:customers AS uuid[])) AS c(customer_id)
                    RETURNING credit_account_id, customer_id
                )
                INSERT INTO credit_requests (organization_id, credit_account_id, kind,
                    requested_limit, requested_term_days, reason, requested_by, requested_at)
                SELECT :org, a.credit_account_id, 'new_line', 1500, 30, 'Solicitud de prueba',
                       :staff, now() - make_interval(hours => n::int)
                FROM unnest(CAST(:customers AS uuid[])) WITH ORDINALITY AS c(customer_id, n)
                JOIN accounts a USING (customer_id)
                """
            ),
            {"org": organization_id, "customers": customer_ids, "staff": staff_id},
        )


def credit_portfolio_load(
    owner_engine: sa.Engine, organization_id: uuid.UUID, customer_ids: list, staff_id: uuid.UUID
) -> None:
    """An approved account with two outstanding charges (due dates spread over every aging
    bucket) for each of these customers: what the aging report reads."""
    with owner_engine.begin() as connection:
        _scope(connection, organization_id)
        connection.execute(
            sa.text(
                """
                CREATE TEMP TABLE bench_portfolio ON COMMIT DROP AS
                SELECT customer_id, gen_random_uuid() AS account_id, n
                FROM unnest(CAST(:customers AS uuid[])) WITH ORDINALITY AS c(customer_id, n)
                """
            ),
            {"customers": customer_ids},
        )
        connection.execute(
            sa.text(
                """
                CREATE TEMP TABLE bench_portfolio_charges ON COMMIT DROP AS
                SELECT p.account_id, (20 + (p.n * 7 + k * 13) % 300)::numeric(12, 2) AS amount,
                       current_date + 20 - ((p.n * 31 + k * 17) % 150)::int AS due_date
                FROM bench_portfolio p, generate_series(1, 2) AS k
                """
            )
        )
        connection.execute(
            sa.text(
                """
                INSERT INTO credit_accounts (organization_id, credit_account_id, customer_id,
                    credit_limit, credit_used, payment_term_days, status, approved_at,
                    approved_by)
                SELECT :org, p.account_id, p.customer_id, 2000, charged.used,
                       30, 'approved', current_date - 200, :staff
                FROM bench_portfolio p
                JOIN (SELECT account_id, sum(amount) AS used FROM bench_portfolio_charges
                      GROUP BY account_id) AS charged USING (account_id)
                """
            ),
            {"org": organization_id, "staff": staff_id},
        )
        connection.execute(
            sa.text(
                """
                INSERT INTO credit_usages (organization_id, credit_account_id, order_id, amount,
                    status, due_date, created_at, created_by)
                SELECT :org, account_id, gen_random_uuid(), amount,
                       CASE WHEN due_date < current_date THEN 'overdue' ELSE 'pending' END,
                       due_date, now() - interval '40 days', :staff
                FROM bench_portfolio_charges
                """
            ),
            {"org": organization_id, "staff": staff_id},
        )


def _scope(connection: sa.Connection, organization_id: uuid.UUID) -> None:
    connection.execute(
        sa.text("SELECT set_config('app.current_organization_id', :org, true)"),
        {"org": str(organization_id)},
    )
