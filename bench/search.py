"""Customer search benchmark: SQL alone, plans, and the htmx search partial over HTTP.

`python -m bench.search` (or `make bench`) starts its own PostgreSQL and Redis under
`.data/bench` (unless DATABASE_URL/REDIS_URL are set), migrates, seeds 1,000,000 customers in
one organization plus two smaller ones (once), then measures:

1. the search SQL the app runs, as the app role with RLS on, per query kind (p50/p95);
2. each kind's plan (`customer_search_explain`): no Seq Scan on customers allowed;
3. the search partial (`GET /customers/?q=…` with `HX-Request: true`) through gunicorn with wrk,
   and a bare Flask "one query + template" endpoint (bench/baseline_app.py) in the same run.

It ends with a table of the product's targets marked PASS or FAIL. See docs/benchmarks.md.
"""

import argparse
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

from portal.embedded import gunicorn_command, process_stop

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAIN_ORG = (uuid.UUID("00000000-0000-4000-8000-00000000b001"), "Bench Retail PA", 0, "correo.pa")
OTHER_ORGS = [
    (uuid.UUID("00000000-0000-4000-8000-00000000b002"), "Bench Otra Uno", 5_000_000, "uno.pa"),
    (uuid.UUID("00000000-0000-4000-8000-00000000b003"), "Bench Otra Dos", 6_000_000, "dos.pa"),
]
BENCH_EMAIL = "bench-staff@bench.pa"
BENCH_PASSWORD = "bench-portal-2026"  # noqa: S105 - a throwaway user in the benchmark's own database
USER_AGENT = "portal-bench/1.0"  # Flask-Login's "strong" session protection hashes the agent
CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SQL_TARGET_MS = 10.0
HTTP_TARGET_MS = 50.0
THROUGHPUT_TARGET = 0.5
KINDS = {
    "name": "first name + surname (jose perez)",
    "name_prefix": "first name + surname prefix (maria gonz)",
    "name_typo": "first name + misspelt surname (jose perz)",
    "surname_typo": "misspelt surname alone (gonzales)",
    "email_prefix": "first 8 characters of a real email",
    "phone_local": "local phone number (6123-4567)",
    "phone_intl": "international phone number (+507 6123 4567)",
    "document": "document number, exact (8-12-345)",
    "document_prefix": "document number without its last 2 characters",
    "recent": "empty box: most recently active customers",
}
NAME_KINDS = ("name", "name_prefix", "name_typo", "surname_typo")
# Kinds that identify one customer: that customer should be on the first page of results
# (an 8-character email prefix does not: "maria.ro" is shared by many customers).
IDENTIFYING_KINDS = ("phone_local", "phone_intl", "document")
# Key lookups (phone, document): the cheapest searches, to show the per-request cost of the app.
KEY_KINDS = ("phone_local", "phone_intl", "document", "document_prefix")


def say(*parts) -> None:
    """Print and flush, so progress shows up under make and in CI logs."""
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


@dataclass(frozen=True)
class Query:
    """One search box input of the mix, with the customer it was derived from."""

    kind: str
    text: str
    customer_id: uuid.UUID | None = None

    @property
    def path(self) -> str:
        """The htmx search URL."""
        return "/customers/?" + urlencode({"q": self.text})


@dataclass
class KindResult:
    """SQL timings and outcomes of one query kind."""

    search_ms: list[float] = field(default_factory=list)
    count_ms: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    hits: list[bool] = field(default_factory=list)
    plan_ok: bool | None = None
    http_ms: list[float] = field(default_factory=list)


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

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


# --- servers, schema, data -------------------------------------------------------------------


def portal_app(urls):
    """The portal connected as the app role, migrated to the latest revision."""
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
    with app.app_context():
        upgrade()
    return app


def organization_ensure(organization_id: uuid.UUID, name: str, *, with_staff: bool) -> None:
    """Create the organization (and the benchmark's branch_staff user) unless present."""
    from portal.auth.models import Organization, StaffUser
    from portal.auth.services import password_hash
    from portal.db import organization_scope
    from portal.extensions import db

    with organization_scope(organization_id):
        if db.session.get(Organization, organization_id) is None:
            db.session.add(Organization(organization_id=organization_id, name=name))
            db.session.commit()
        if with_staff and not db.session.scalar(
            sa.select(StaffUser.staff_user_id).where(StaffUser.email == BENCH_EMAIL)
        ):
            db.session.add(
                StaffUser(
                    email=BENCH_EMAIL,
                    full_name="Persona Benchmark",
                    roles=["branch_staff"],
                    password_hash=password_hash(BENCH_PASSWORD),
                )
            )
        db.session.commit()


def customers_ensure(
    organization_id: uuid.UUID, target: int, *, start: int, domain: str, chunk: int
) -> tuple[int, int]:
    """Top the organization up to `target` customers in chunks; (customers now, rows loaded)."""
    from portal.customers.models import Customer
    from portal.db import organization_scope
    from portal.extensions import db
    from portal.seed import customer_rows, customers_bulk_load

    with organization_scope(organization_id):
        existing = db.session.scalar(sa.select(sa.func.count()).select_from(Customer))
        db.session.commit()
    loaded = 0
    while existing < target:
        size = min(chunk, target - existing)
        started = time.perf_counter()
        loaded += customers_bulk_load(
            organization_id, customer_rows(size, start=start + existing, email_domain=domain)
        )
        existing += size
        say(f"  {existing:>9,} / {target:,} customers ({time.perf_counter() - started:.1f} s)")
    return existing, loaded


def data_seed(app, owner_engine: sa.Engine, args) -> dict[uuid.UUID, int]:
    """Seed the three organizations once; VACUUM ANALYZE after any load. Customers per org."""
    say("\n== Seeding")
    started = time.perf_counter()
    counts = {}
    loaded = 0
    organizations = [(*MAIN_ORG, args.customers)] + [
        (*org, args.other_customers) for org in OTHER_ORGS
    ]
    with app.app_context():
        for organization_id, name, start, domain, target in organizations:
            organization_ensure(organization_id, name, with_staff=organization_id == MAIN_ORG[0])
            counts[organization_id], added = customers_ensure(
                organization_id, target, start=start, domain=domain, chunk=args.chunk
            )
            loaded += added
            say(f"  {name}: {counts[organization_id]:,} customers ({added:,} loaded now)")
    if loaded:
        # VACUUM too: a bulk-loaded table has no visibility map and a full GIN pending list,
        # which a production table that autovacuum looks after would not have.
        with owner_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE) customers")
        say(f"  seeded {loaded:,} rows in {time.perf_counter() - started:.1f} s (incl. VACUUM)")
    else:
        say(f"  data already present; nothing loaded ({time.perf_counter() - started:.1f} s)")
    return counts


def server_facts(owner_engine: sa.Engine) -> None:
    """PostgreSQL version, memory settings and the size of customers and its indexes."""
    with owner_engine.connect() as connection:
        version = connection.scalar(sa.text("SHOW server_version"))
        buffers = connection.scalar(sa.text("SHOW shared_buffers"))
        work_mem = connection.scalar(sa.text("SHOW work_mem"))
        sizes = connection.execute(
            sa.text(
                "SELECT pg_size_pretty(pg_table_size('customers')),"
                " pg_size_pretty(pg_indexes_size('customers'))"
            )
        ).one()
        trigram = connection.scalar(
            sa.text("SELECT pg_size_pretty(pg_relation_size('idx_customers_search_name'))")
        )
    say(
        f"  PostgreSQL {version}, shared_buffers {buffers}, work_mem {work_mem}; customers: "
        f"table {sizes[0]}, indexes {sizes[1]} (trigram GIN {trigram}); {os.cpu_count()} CPUs"
    )


# --- the query mix ---------------------------------------------------------------------------


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _surname(last_name: str) -> str:
    words = _plain(last_name).split()
    return next((word for word in words if len(word) >= 3), words[0])


def _drop_letter(word: str) -> str:
    return word[:-2] + word[-1] if len(word) > 3 else word


def _misspell(word: str) -> str:
    # The confusions staff really make when typing Spanish surnames.
    for wrong, right in (("z", "s"), ("v", "b"), ("ll", "y"), ("c", "s")):
        position = word.rfind(wrong)
        if position > 0:
            return word[:position] + right + word[position + len(wrong) :]
    return _drop_letter(word)


def _local_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return digits[3:] if digits.startswith("507") else digits[-8:]


def query_text(kind: str, customer) -> str:
    """What a member of staff would type to find this customer, for one kind of query."""
    first = _plain(customer.first_name).split()[0]
    surname = _surname(customer.last_name)
    local = _local_phone(customer.phone)
    document = customer.document_number or ""
    return {
        "name": f"{first} {surname}",
        "name_prefix": f"{first} {surname[:4]}",
        "name_typo": f"{first} {_drop_letter(surname)}",
        "surname_typo": _misspell(surname),
        "email_prefix": customer.email[:8],
        "phone_local": f"{local[:4]}-{local[4:]}",
        "phone_intl": f"+507 {local[:4]} {local[4:]}",
        "document": document,
        "document_prefix": document[: max(4, len(document) - 2)],
    }[kind]


def customers_sample(organization_id: uuid.UUID, count: int, seed: int) -> list:
    """`count` distinct real customers, picked by random key through the primary key index."""
    from portal.customers.models import Customer
    from portal.db import organization_scope
    from portal.extensions import db

    rng = random.Random(seed)
    columns = (
        Customer.customer_id,
        Customer.customer_type,
        Customer.first_name,
        Customer.last_name,
        Customer.email,
        Customer.phone,
        Customer.document_number,
    )
    found = {}
    with organization_scope(organization_id):
        for _ in range(count * 3):
            if len(found) == count:
                break
            pivot = uuid.UUID(int=rng.getrandbits(128))
            row = db.session.execute(
                sa.select(*columns)
                .where(Customer.customer_id >= pivot)
                .order_by(Customer.customer_id)
                .limit(1)
            ).first()
            if row is not None:
                found[row.customer_id] = row
        db.session.commit()
    return list(found.values())


def query_mix(app, per_kind: int, seed: int) -> list[Query]:
    """`per_kind` queries of every kind, derived from real customers read as the app role."""
    with app.app_context():
        sample = customers_sample(MAIN_ORG[0], per_kind * len(KINDS), seed)
    people = [customer for customer in sample if customer.customer_type == "b2c"]
    mix = []
    for position, kind in enumerate(kind for kind in KINDS if kind != "recent"):
        pool = people if kind in NAME_KINDS else sample
        chosen = pool[position * per_kind : (position + 1) * per_kind] or pool[:per_kind]
        mix += [
            Query(kind, query_text(kind, customer), customer.customer_id) for customer in chosen
        ]
    mix += [Query("recent", "")] * per_kind
    return mix


def mix_print(mix: list[Query]) -> None:
    """Each kind with how many queries it has and a few examples."""
    say("\n== Query mix")
    for kind, description in KINDS.items():
        texts = [query.text for query in mix if query.kind == kind]
        examples = ", ".join(repr(text) for text in list(dict.fromkeys(texts))[:4])
        say(f"  {kind:<16} {len(texts):>3} x {description}: {examples}")


# --- SQL alone -------------------------------------------------------------------------------


def search_statements(query: str):
    """(first page, capped count) exactly as portal.customers.services.customer_search runs them."""
    from portal.customers.models import Customer
    from portal.customers.services import (
        COUNT_CAP,
        PAGE_SIZE,
        SearchFilters,
        _recent_statement,
        _search_function,
    )

    filters = SearchFilters(query=query)
    if query:
        page = _search_function(filters, limit=PAGE_SIZE + 1)
        counted = _search_function(filters, limit=COUNT_CAP + 1)
    else:
        page = (
            _recent_statement(filters)
            .order_by(Customer.activity_at.desc(), Customer.customer_id.desc())
            .limit(PAGE_SIZE + 1)
        )
        counted = _recent_statement(filters).with_only_columns(Customer.customer_id)
    count = sa.select(sa.func.count()).select_from(counted.limit(COUNT_CAP + 1).subquery())
    return page, count


def _scope(connection: sa.Connection, organization_id: uuid.UUID) -> None:
    connection.execute(
        sa.text("SELECT set_config('app.current_organization_id', :org, true)"),
        {"org": str(organization_id)},
    )


def sql_measure(engine: sa.Engine, mix: list[Query], rounds: int, seed: int) -> dict:
    """Time each query's first page and count as the app role, one transaction per query."""
    say(f"\n== SQL alone (app role, RLS on, {rounds} rounds over {len(mix)} queries)")
    results = {kind: KindResult() for kind in KINDS}
    statements = {query.text: search_statements(query.text) for query in mix}
    rng = random.Random(seed)
    with engine.connect() as connection:
        connection.exec_driver_sql("SET statement_timeout = '30s'")
        connection.commit()
        for round_number in range(rounds + 1):  # round 0 warms the cache and is not recorded
            order = mix[:]
            rng.shuffle(order)
            for query in order:
                page, count = statements[query.text]
                with connection.begin():
                    _scope(connection, MAIN_ORG[0])
                    started = time.perf_counter()
                    ids = [row.customer_id for row in connection.execute(page)]
                    searched = time.perf_counter()
                    total = connection.execute(count).scalar_one()
                    counted = time.perf_counter()
                if round_number == 0:
                    continue
                result = results[query.kind]
                result.search_ms.append((searched - started) * 1000)
                result.count_ms.append((counted - searched) * 1000)
                if round_number == 1:
                    result.rows.append(len(ids))
                    result.totals.append(total)
                    if query.kind in IDENTIFYING_KINDS:
                        result.hits.append(query.customer_id in ids)
    say(
        f"  {'kind':<16} {'page p50':>9} {'page p95':>9} {'count p50':>10} {'count p95':>10}"
        f" {'rows':>5} {'matches':>8}  on page 1"
    )
    for kind, result in results.items():
        hits = f"{sum(result.hits)}/{len(result.hits)}" if result.hits else "-"
        say(
            f"  {kind:<16} {percentile(result.search_ms, 50):>9.2f} "
            f"{percentile(result.search_ms, 95):>9.2f} {percentile(result.count_ms, 50):>10.2f} "
            f"{percentile(result.count_ms, 95):>10.2f} {max(result.rows):>5} "
            f"{_matches(result.totals):>8}  {hits}"
        )
    say("  (ms; page = the 26-row search the app runs, count = its capped count on page 1;")
    say("   matches = median capped count, '>1000' when capped; on page 1 = source customer found)")
    return results


def _matches(totals: list[int]) -> str:
    median = sorted(totals)[len(totals) // 2]
    return ">1000" if median > 1000 else str(median)


# --- plans -----------------------------------------------------------------------------------


def _plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def _plan_lines(node: dict, depth: int = 0):
    label = node["Node Type"]
    if "Relation Name" in node:
        label += f" on {node['Relation Name']}"
    if "Index Name" in node:
        label += f" using {node['Index Name']}"
    condition = node.get("Index Cond") or node.get("Recheck Cond") or node.get("Filter")
    detail = f"  [{condition[:70]}]" if condition else ""
    yield f"{'   ' * depth}-> {label} (rows≈{node.get('Plan Rows')}){detail}"
    for child in node.get("Plans", []):
        yield from _plan_lines(child, depth + 1)


def _plan_json(value) -> dict:
    document = json.loads(value) if isinstance(value, str) else value
    return document[0]["Plan"]


def plans_check(engine: sa.Engine, mix: list[Query], results: dict) -> None:
    """EXPLAIN one query of each kind as the app role; no Seq Scan on customers allowed."""
    say("\n== Plans (EXPLAIN as the app role, one query per kind)")
    firsts = {}
    for query in mix:
        firsts.setdefault(query.kind, query)
    with engine.connect() as connection:
        for kind, query in firsts.items():
            with connection.begin():
                _scope(connection, MAIN_ORG[0])
                if query.text:
                    plan = _plan_json(
                        connection.scalar(
                            sa.text(
                                "SELECT string_agg(plan::text, '') FROM"
                                " customer_search_explain(:q, p_limit => 26) AS plan"
                            ),
                            {"q": query.text},
                        )
                    )
                else:
                    page, _ = search_statements("")
                    compiled = page.compile(engine, compile_kwargs={"literal_binds": True})
                    plan = _plan_json(
                        connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}").scalar()
                    )
            nodes = list(_plan_nodes(plan))
            seq_scan = any(
                node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "customers"
                for node in nodes
            )
            indexed = any(node.get("Index Name", "").startswith("idx_customers") for node in nodes)
            results[kind].plan_ok = indexed and not seq_scan
            say(f"  {kind} {query.text!r}: {verdict(results[kind].plan_ok)}")
            for line in _plan_lines(plan):
                say("      " + line)


def plans_analyze(owner_url: str, mix: list[Query]) -> None:
    """EXPLAIN ANALYZE the search statement of one query per kind, as the owner (diagnosis)."""
    import psycopg

    say("\n== EXPLAIN (ANALYZE, BUFFERS) of the search function's statement (owner role)")
    conninfo = sa.make_url(owner_url).set(drivername="postgresql").render_as_string(False)
    firsts = {}
    for query in mix:
        if query.text:
            firsts.setdefault(query.kind, query)
    # Client-side binding: EXPLAIN EXECUTE takes literal arguments, not protocol parameters.
    with psycopg.connect(conninfo, cursor_factory=psycopg.ClientCursor) as connection:
        statement = connection.execute("SELECT customer_search_sql()").fetchone()[0]
        # The settings the SECURITY DEFINER function runs with (threshold, enable_seqscan, ...).
        for (setting,) in connection.execute(
            "SELECT unnest(proconfig) FROM pg_proc WHERE proname = 'customer_search'"
        ):
            name, _, value = setting.partition("=")
            connection.execute("SELECT set_config(%s, %s, false)", [name, value])
        connection.execute(
            "PREPARE bench_search (uuid, text, text, text, text, text, text, text, text,"
            " real, uuid, integer) AS " + statement
        )
        for kind, query in firsts.items():
            terms = connection.execute(
                "SELECT * FROM customer_search_terms(%s)", [query.text]
            ).fetchone()
            lines = connection.execute(
                "EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_search"
                "(%s, %s, %s, %s, %s, NULL, NULL, NULL, NULL, NULL, NULL, 26)",
                [MAIN_ORG[0], *terms],
            ).fetchall()
            say(f"\n  {kind} {query.text!r}")
            for (line,) in lines:
                say("    " + line)
        connection.rollback()


# --- HTTP ------------------------------------------------------------------------------------


def gunicorn_start(target: str, port: int, env: dict, log_path: Path, args) -> subprocess.Popen:
    """gunicorn serving `target` on 127.0.0.1:port in its own process group, logging to a file."""
    with log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - fixed interpreter and arguments
            gunicorn_command(port, workers=args.workers, threads=args.threads, target=target),
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


def _cookie_update(jar: SimpleCookie, response: http.client.HTTPResponse) -> None:
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)


def login(port: int) -> str:
    """Log the benchmark user in through the real form; the Cookie header to send afterwards."""
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
    form = {"csrf_token": token.group(1), "email": BENCH_EMAIL, "password": BENCH_PASSWORD}
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


def search_headers(cookie: str) -> dict[str, str]:
    """What htmx sends for the search partial."""
    return {"Cookie": cookie, "HX-Request": "true", "User-Agent": USER_AGENT}


def http_measure(port: int, cookie: str, mix: list[Query], samples: int, results: dict) -> None:
    """Sequential partial requests per kind (one connection, keep-alive), client-side timing."""
    say(f"\n== HTTP search partial per kind (1 connection, {samples} requests per kind)")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = search_headers(cookie)

    def fetch(query: Query) -> float:
        started = time.perf_counter()
        connection.request("GET", query.path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200 or b'id="customer-results"' not in body or b"<html" in body:
            raise RuntimeError(f"{query.path} answered {response.status} without the partial")
        return elapsed

    for query in mix:  # warm-up and check: every query answers the partial
        fetch(query)
    for kind, result in results.items():
        queries = [query for query in mix if query.kind == kind]
        result.http_ms = [fetch(queries[number % len(queries)]) for number in range(samples)]
        say(
            f"  {kind:<16} p50 {percentile(result.http_ms, 50):7.1f} ms   "
            f"p95 {percentile(result.http_ms, 95):7.1f} ms"
        )


WRK_SCRIPT = """
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


def _lua_string(text: str) -> str:
    if not text.isascii() or '"' in text or "\\" in text:
        raise ValueError(f"not a plain ASCII Lua string: {text!r}")
    return f'"{text}"'


def _log_statuses(log_path: Path, offset: int) -> Counter:
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
    """Drive 127.0.0.1:port with wrk for args.duration seconds, rotating through paths."""
    script = WRK_SCRIPT % {
        "paths": ", ".join(_lua_string(path) for path in paths),
        "headers": ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()),
    }
    offset = log.stat().st_size if log else 0
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
        _log_statuses(log, offset) if log else Counter(),
    )
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(result.statuses.items()))
    say(
        f"  {label:<36} c={connections:<2} {result.rps:8.1f} req/s   p50 {result.p50_ms:7.1f}"
        f"   p95 {result.p95_ms:7.1f}   p99 {result.p99_ms:7.1f} ms   errors {result.errors}"
        + (f"   statuses {{{statuses}}}" if statuses else "")
    )
    return result


def http_benchmark(urls, mix: list[Query], results: dict, args) -> dict[str, WrkResult]:
    """Serve the portal and the baseline with gunicorn and load both with wrk."""
    from portal.embedded import free_port

    say(
        f"\n== HTTP (gunicorn {args.workers} workers x {args.threads} threads, "
        f"wrk {args.duration} s per run)"
    )
    env = os.environ | urls.environ() | {"PORTAL_ENV": "development"}
    portal_port, baseline_port = free_port(), free_port()
    portal_log = args.data_dir / "gunicorn-portal.log"
    baseline_log = args.data_dir / "gunicorn-baseline.log"
    processes = []
    try:
        processes.append(gunicorn_start("portal.wsgi:app", portal_port, env, portal_log, args))
        processes.append(
            gunicorn_start("bench.baseline_app:app", baseline_port, env, baseline_log, args)
        )
        wait_ready(portal_port, "/healthz", processes[0], portal_log)
        wait_ready(baseline_port, "/", processes[1], baseline_log)
        cookie = login(portal_port)
        say(f"  logged in as {BENCH_EMAIL} through the login form; logs in {args.data_dir}")
        http_measure(portal_port, cookie, mix, args.http_samples, results)

        paths = [query.path for query in mix]
        random.Random(args.seed).shuffle(paths)
        headers = search_headers(cookie)
        say("\n== wrk")
        light = 1  # one member of staff typing: latency without queueing
        warm = {"duration": min(5, args.duration)}
        warm_args = argparse.Namespace(**(vars(args) | warm))
        wrk_run("warm-up (not counted)", baseline_port, ["/"], headers, light, warm_args, None)
        wrk_run("warm-up (not counted)", portal_port, paths, headers, light, warm_args, portal_log)
        runs = {
            "baseline": wrk_run(
                "baseline: one query + template",
                baseline_port,
                ["/"],
                headers,
                args.connections,
                args,
                None,
            ),
            "search": wrk_run(
                "search partial, query mix",
                portal_port,
                paths,
                headers,
                args.connections,
                args,
                portal_log,
            ),
            "search_light": wrk_run(
                "search partial, query mix", portal_port, paths, headers, light, args, portal_log
            ),
            "search_keys": wrk_run(
                "search partial, phone/document only",
                portal_port,
                [query.path for query in mix if query.kind in KEY_KINDS],
                headers,
                args.connections,
                args,
                portal_log,
            ),
        }
        for key in ("search", "search_light", "search_keys"):
            if set(runs[key].statuses) - {200}:
                say(f"  WARNING: {runs[key].label} got non-200 statuses: {runs[key].statuses}")
        return runs
    finally:
        for process in processes:
            process_stop(process)


# --- summary ---------------------------------------------------------------------------------


def summary_print(results: dict, runs: dict[str, WrkResult] | None, customers: int) -> bool:
    """The targets table; True when every measured target passed."""
    searches = [ms for kind, result in results.items() for ms in result.search_ms]
    sql_p95 = percentile(searches, 95)
    slow = [kind for kind, r in results.items() if percentile(r.search_ms, 95) > SQL_TARGET_MS]
    bad_plans = [kind for kind, result in results.items() if result.plan_ok is False]
    rows = [
        (
            "SQL alone p95, whole mix (page query)",
            f"{sql_p95:.1f} ms",
            f"<= {SQL_TARGET_MS:.0f} ms",
            verdict(sql_p95 <= SQL_TARGET_MS),
        ),
        (
            "SQL alone p95, kinds over target",
            ", ".join(slow) or "none",
            "none",
            verdict(not slow),
        ),
        (
            "plans use indexes (no Seq Scan on customers)",
            f"{len(results) - len(bad_plans)}/{len(results)} kinds",
            "all kinds",
            verdict(not bad_plans),
        ),
    ]
    if runs:
        light, loaded, baseline = runs["search_light"], runs["search"], runs["baseline"]
        keys = runs["search_keys"]
        ratio = loaded.rps / baseline.rps if baseline.rps else 0.0
        keys_ratio = keys.rps / baseline.rps if baseline.rps else 0.0
        http_slow = [
            kind for kind, r in results.items() if percentile(r.http_ms, 95) > HTTP_TARGET_MS
        ]
        rows += [
            (
                f"HTTP search partial p95, mix, c={light.connections} (wrk)",
                f"{light.p95_ms:.1f} ms",
                f"<= {HTTP_TARGET_MS:.0f} ms",
                verdict(light.p95_ms <= HTTP_TARGET_MS),
            ),
            (
                "HTTP p95 per kind, kinds over target",
                ", ".join(http_slow) or "none",
                "none",
                verdict(not http_slow),
            ),
            (
                f"throughput search / baseline, c={loaded.connections}",
                f"{ratio:.2f} ({loaded.rps:.0f} / {baseline.rps:.0f} req/s)",
                f">= {THROUGHPUT_TARGET:.2f}",
                verdict(ratio >= THROUGHPUT_TARGET),
            ),
            (
                f"(info) throughput phone/document only / baseline, c={keys.connections}",
                f"{keys_ratio:.2f} ({keys.rps:.0f} / {baseline.rps:.0f} req/s)",
                "-",
                "-",
            ),
            (
                f"(info) HTTP search partial p95 at c={loaded.connections}",
                f"{loaded.p95_ms:.1f} ms",
                "-",
                "-",
            ),
        ]
    width = max(len(row[0]) for row in rows)
    measured = max(len(row[1]) for row in rows)
    say(f"\n== Summary ({customers:,} customers in the main organization)")
    say(f"  {'target':<{width}}  {'measured':<{measured}}  {'goal':<10}  result")
    say(f"  {'-' * width}  {'-' * measured}  {'-' * 10}  ------")
    for name, value, goal, result in rows:
        say(f"  {name:<{width}}  {value:<{measured}}  {goal:<10}  {result}")
    return all(row[3] != "FAIL" for row in rows)


# --- entry point -----------------------------------------------------------------------------


def arguments(argv: list[str] | None):
    """Command line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / ".data" / "bench")
    parser.add_argument("--customers", type=int, default=1_000_000, help="in the main org")
    parser.add_argument("--other-customers", type=int, default=50_000, help="in each other org")
    parser.add_argument("--chunk", type=int, default=200_000, help="rows per bulk load")
    parser.add_argument("--per-kind", type=int, default=20, help="queries of each kind")
    parser.add_argument("--rounds", type=int, default=5, help="SQL passes over the mix")
    parser.add_argument("--http-samples", type=int, default=40, help="HTTP requests per kind")
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (loaded)")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-http", action="store_true", help="SQL and plans only")
    parser.add_argument(
        "--explain-analyze", action="store_true", help="also EXPLAIN ANALYZE one query per kind"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    if not args.no_http and not shutil.which(args.wrk):
        parser.error("wrk is not installed (Debian: apt-get install -y wrk), or use --no-http")
    return args


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the whole benchmark and print the summary."""
    args = arguments(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so finally blocks and atexit stop the servers
    from portal.embedded import services_start

    started = time.monotonic()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    say(f"== Servers (data in {args.data_dir})")
    urls = services_start(args.data_dir, database="portal_bench")
    app = portal_app(urls)
    owner_engine = sa.create_engine(urls.database_owner_url, poolclass=sa.pool.NullPool)
    app_engine = sa.create_engine(urls.database_url, poolclass=sa.pool.NullPool)
    try:
        counts = data_seed(app, owner_engine, args)
        server_facts(owner_engine)
        mix = query_mix(app, args.per_kind, args.seed)
        mix_print(mix)
        results = sql_measure(app_engine, mix, args.rounds, args.seed)
        plans_check(app_engine, mix, results)
        if args.explain_analyze:
            plans_analyze(urls.database_owner_url, mix)
        runs = None if args.no_http else http_benchmark(urls, mix, results, args)
        passed = summary_print(results, runs, counts[MAIN_ORG[0]])
    except KeyboardInterrupt:
        say("\nInterrupted; stopping the servers.")
        return 130
    finally:
        owner_engine.dispose()
        app_engine.dispose()
    say(f"\nDone in {time.monotonic() - started:.0f} s; stopping Redis and PostgreSQL.")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
