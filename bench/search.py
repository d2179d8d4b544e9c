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
import json
import os
import random
import re
import shutil
import signal
import sys
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

from bench.harness import (
    Target,
    http_timings,
    login,
    organization_ensure,
    page_headers,
    percentile,
    portal_and_baseline,
    portal_app,
    say,
    services,
    staff_ensure,
    targets_print,
    verdict,
    wrk_arguments,
    wrk_run,
    wrk_warm_up,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAIN_ORG = (uuid.UUID("00000000-0000-4000-8000-00000000b001"), "Bench Retail PA", 0, "correo.pa")
OTHER_ORGS = [
    (uuid.UUID("00000000-0000-4000-8000-00000000b002"), "Bench Otra Uno", 5_000_000, "uno.pa"),
    (uuid.UUID("00000000-0000-4000-8000-00000000b003"), "Bench Otra Dos", 6_000_000, "dos.pa"),
]
BENCH_EMAIL = "bench-staff@bench.pa"
BENCH_PASSWORD = "bench-portal-2026"  # noqa: S105 - a throwaway user in the benchmark's own database
SQL_TARGET_MS = 10.0  # names, SQL alone
NAME_HTTP_TARGET_MS = 50.0  # names, HTTP p95 at one connection
KEY_HTTP_TARGET_MS = 20.0  # phone, document, email, empty box: HTTP p95 at one connection
KEY_THROUGHPUT_TARGET = 0.6  # each of those at c=8, against the baseline
MIX_HTTP_TARGET_MS = 50.0
MIX_THROUGHPUT_TARGET = 0.5
KINDS = {
    "name": "first name + surname, exact (jose perez)",
    "name_prefix": "first name + surname prefix (maria gonz)",
    "name_typo": "first name + misspelt surname (jose perz)",
    "name_typos": "one typo in each word (jsoe perz)",
    "name_reversed": "surname first, then first name (perez jose)",
    "surname_typo": "misspelt surname alone (gonzales)",
    "name_digits": "a name with digits (farmacia 24, via 321)",
    "email_prefix": "first 8 characters of a real email",
    "phone_local": "local phone number (6123-4567)",
    "phone_intl": "international phone number (+507 6123 4567)",
    "document": "document number, exact (8-12-345)",
    "document_prefix": "document number without its last 2 characters",
    "recent": "empty box: most recently active customers",
}
NAME_KINDS = (
    "name",
    "name_prefix",
    "name_typo",
    "name_typos",
    "name_reversed",
    "surname_typo",
    "name_digits",
)
# Kinds that identify one customer: that customer should be on the first page of results
# (an 8-character email prefix does not: "maria.ro" is shared by many customers).
IDENTIFYING_KINDS = ("phone_local", "phone_intl", "document")
# The key lookups and the empty box, grouped as the targets name them (throughput each at c=8).
KEY_GROUPS = {
    "phone": ("phone_local", "phone_intl"),
    "document": ("document", "document_prefix"),
    "email": ("email_prefix",),
    "empty box": ("recent",),
}
# Customers whose names carry numbers, as shops and branches do ("Farmacia 24", "Vía 321").
DIGIT_NAMES = (("Farmacia", "S.A."), ("Ferretería", "Vía"), ("Super", "Calle"), ("Taller", "S.A."))
DIGIT_CUSTOMERS = 4_000
DIGIT_DOMAIN = "digitos.pa"


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


# --- servers, schema, data -------------------------------------------------------------------


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


def digit_names_ensure(organization_id: uuid.UUID) -> int:
    """DIGIT_CUSTOMERS customers named like "Farmacia 24" or "Ferretería Vía 321" (once)."""
    from portal.customers.models import Customer
    from portal.db import organization_scope
    from portal.extensions import db
    from portal.seed import CUSTOMER_COLUMNS, customer_rows, customers_bulk_load

    with organization_scope(organization_id):
        present = db.session.scalar(
            sa.select(sa.func.count()).where(Customer.email.like(f"%@{DIGIT_DOMAIN}"))
        )
        db.session.commit()
    if present:
        return 0
    first, last = CUSTOMER_COLUMNS.index("first_name"), CUSTOMER_COLUMNS.index("last_name")
    rows = []
    for number, row in enumerate(
        customer_rows(DIGIT_CUSTOMERS, start=9_000_000, email_domain=DIGIT_DOMAIN)
    ):
        row = list(row)
        shop, street = DIGIT_NAMES[number % len(DIGIT_NAMES)]
        row[first] = f"{shop} {number // len(DIGIT_NAMES) + 1}"
        row[last] = street if street == "S.A." else f"{street} {100 + number % 900}"
        rows.append(tuple(row))
    return customers_bulk_load(organization_id, rows)


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
            organization_ensure(organization_id, name)
            counts[organization_id], added = customers_ensure(
                organization_id, target, start=start, domain=domain, chunk=args.chunk
            )
            loaded += added
            say(f"  {name}: {counts[organization_id]:,} customers ({added:,} loaded now)")
        staff_ensure(MAIN_ORG[0], BENCH_EMAIL, BENCH_PASSWORD, ["branch_staff"])
        added = digit_names_ensure(MAIN_ORG[0])
        counts[MAIN_ORG[0]] += added
        loaded += added
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
        words = connection.execute(
            sa.text(
                "SELECT pg_size_pretty(pg_relation_size('idx_customers_name_words')),"
                " (SELECT count(*) FROM customer_name_words)"
            )
        ).one()
    say(
        f"  PostgreSQL {version}, shared_buffers {buffers}, work_mem {work_mem}; customers: "
        f"table {sizes[0]}, indexes {sizes[1]} (name words GIN {words[0]}, {words[1]:,} "
        f"dictionary words); {os.cpu_count()} CPUs"
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
        "name_typos": f"{_drop_letter(first)} {_misspell(surname)}",
        "name_reversed": f"{surname} {first}",
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


def query_mix(
    app, per_kind: int, seed: int, organization_id: uuid.UUID = MAIN_ORG[0]
) -> list[Query]:
    """`per_kind` queries of every kind, derived from the organization's real customers read as
    the app role."""
    with app.app_context():
        sample = customers_sample(organization_id, per_kind * len(KINDS), seed)
    people = [customer for customer in sample if customer.customer_type == "b2c"]
    mix = []
    rng = random.Random(seed)
    for number in range(per_kind):  # "farmacia 24", "via 321", "super 7 calle 1"
        shop, street = DIGIT_NAMES[number % len(DIGIT_NAMES)]
        shop_number = rng.randint(1, DIGIT_CUSTOMERS // len(DIGIT_NAMES))
        text = [f"{_plain(shop)} {shop_number}", f"{_plain(street)} {rng.randint(100, 999)}"][
            number % 2 if street != "S.A." else 0
        ]
        mix.append(Query("name_digits", text))
    for position, kind in enumerate(
        kind for kind in KINDS if kind not in ("recent", "name_digits")
    ):
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
    """(first page, capped count) exactly as customers.selectors.customer_search runs them."""
    from portal.customers.models import Customer
    from portal.customers.selectors import (
        COUNT_CAP,
        PAGE_SIZE,
        SearchFilters,
        _count_function,
        _customers_matching,
        _recent_statement,
    )

    filters = SearchFilters(query=query)
    if query:
        return _customers_matching(filters, limit=PAGE_SIZE + 1), _count_function(
            filters, cap=COUNT_CAP + 1
        )
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


def query_time(
    connection: sa.Connection, statements: tuple, organization_id: uuid.UUID
) -> tuple[float, float, list, int]:
    """One query's first page and its count in the organization's scope, one transaction:
    (page ms, count ms, the page's customer ids, the capped count)."""
    page, count = statements
    with connection.begin():
        _scope(connection, organization_id)
        started = time.perf_counter()
        ids = [row.customer_id for row in connection.execute(page)]
        searched = time.perf_counter()
        total = connection.execute(count).scalar_one()
        counted = time.perf_counter()
    return (searched - started) * 1000, (counted - searched) * 1000, ids, total


def sql_measure(
    engine: sa.Engine,
    mix: list[Query],
    rounds: int,
    seed: int,
    organization_id: uuid.UUID = MAIN_ORG[0],
) -> dict:
    """Time each query's first page and count as the app role in the organization's scope, one
    transaction per query."""
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
                search_ms, count_ms, ids, total = query_time(
                    connection, statements[query.text], organization_id
                )
                if round_number == 0:
                    continue
                result = results[query.kind]
                result.search_ms.append(search_ms)
                result.count_ms.append(count_ms)
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
                    # every statement the search runs: its pages by rank and its count
                    plans = [
                        _plan_json(plan)
                        for plan in connection.scalars(
                            sa.text(
                                "SELECT plan::text FROM"
                                " customer_search_explain(:q, p_limit => 26) AS plan"
                            ),
                            {"q": query.text},
                        )
                    ]
                else:
                    page, _ = search_statements("")
                    compiled = page.compile(engine, compile_kwargs={"literal_binds": True})
                    plans = [
                        _plan_json(
                            connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}").scalar()
                        )
                    ]
            results[kind].plan_ok = True  # a word found nowhere runs no statement at all
            for plan in plans:
                nodes = list(_plan_nodes(plan))
                seq_scan = any(
                    node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "customers"
                    for node in nodes
                )
                indexed = any(
                    node.get("Index Name", "").startswith("idx_customers") for node in nodes
                )
                results[kind].plan_ok &= indexed and not seq_scan
            say(f"  {kind} {query.text!r}: {verdict(results[kind].plan_ok)}")
            for plan in plans:
                for line in _plan_lines(plan):
                    say("      " + line)


def plans_analyze(owner_engine: sa.Engine, mix: list[Query]) -> None:
    """EXPLAIN ANALYZE every statement of one query per kind, as the owner (diagnosis)."""
    say("\n== EXPLAIN (ANALYZE, BUFFERS) of each statement of the search (owner role)")
    firsts = {}
    for query in mix:
        if query.text:
            firsts.setdefault(query.kind, query)
    with owner_engine.connect() as connection:
        for kind, query in firsts.items():
            with connection.begin():
                _scope(connection, MAIN_ORG[0])
                connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
                steps = connection.execute(
                    sa.text("SELECT purpose, statement FROM customer_search_steps(:q)"),
                    {"q": query.text},
                ).all()
                for purpose, statement in steps:
                    if purpose == "known_count":
                        say(f"\n  {kind} {query.text!r}: at least {statement} (dictionary)")
                        continue
                    if purpose == "page":
                        statement = statement.replace("$1", "26")
                    else:
                        statement = f"SELECT count(*) FROM ({statement} LIMIT 1051) AS m"
                    say(f"\n  {kind} {query.text!r} {purpose}")
                    for line in connection.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS) " + statement.replace("%", "%%")
                    ).scalars():
                        say("    " + line)
                connection.rollback()


def revisions_compare(app, engine: sa.Engine, mix: list[Query], older: str, rounds: int) -> None:
    """The name searches' SQL at an earlier migration revision and at head, interleaved: each
    round downgrades to `older`, times every name query once, upgrades and times them again, so
    the machine's drift falls on both alike (a schema change's effect, measured apart)."""
    from flask_migrate import downgrade, upgrade

    names = [query for query in mix if query.kind in NAME_KINDS]
    statements = {query.text: search_statements(query.text) for query in names}
    states = {older: lambda: downgrade(revision=older), "head": upgrade}
    timings = {state: [] for state in states}
    say(f"\n== Name searches at {older} and at head, interleaved ({rounds} rounds)")
    with engine.connect() as connection:
        for round_number in range(rounds + 1):  # round 0 warms both and is not recorded
            for state, migrate in states.items():
                with app.app_context():
                    migrate()
                connection.invalidate()  # a new backend: no plan cached under the other state
                for query in names:
                    search_ms, _, _, _ = query_time(connection, statements[query.text], MAIN_ORG[0])
                    if round_number:
                        timings[state].append(search_ms)
    for state, values in timings.items():
        say(
            f"  {state:<24} {len(values)} searches  page p50 {percentile(values, 50):6.2f} ms"
            f"  p95 {percentile(values, 95):6.2f} ms"
        )


# --- HTTP ------------------------------------------------------------------------------------


def http_benchmark(urls, mix: list[Query], results: dict, args) -> dict:
    """Serve the portal and the baseline with gunicorn and load both with wrk."""
    say(
        f"\n== HTTP (gunicorn {args.workers} workers x {args.threads} threads, "
        f"wrk {args.duration} s per run"
        + (", through pgbouncer in transaction pooling mode)" if args.pgbouncer else ")")
    )
    with portal_and_baseline(
        urls,
        args.data_dir,
        workers=args.workers,
        threads=args.threads,
        pgbouncer=args.pgbouncer,
    ) as servers:
        cookie = login(servers.portal_port, BENCH_EMAIL, BENCH_PASSWORD)
        headers = page_headers(cookie, htmx=True)
        say(f"  logged in as {BENCH_EMAIL} through the login form; logs in {args.data_dir}")

        def partial(path, status, body):
            if b'id="customer-results"' not in body or b"<html" in body:
                raise RuntimeError(f"{path} answered {status} without the partial")

        say(f"\n== HTTP search partial per kind (1 connection, {args.http_samples} per kind)")
        for kind, result in results.items():
            paths = [query.path for query in mix if query.kind == kind]
            result.http_ms = http_timings(
                servers.portal_port, paths, headers, args.http_samples, partial
            )
            say(
                f"  {kind:<16} p50 {percentile(result.http_ms, 50):7.1f} ms   "
                f"p95 {percentile(result.http_ms, 95):7.1f} ms"
            )

        paths = [query.path for query in mix]
        random.Random(args.seed).shuffle(paths)
        say("\n== wrk")
        wrk_warm_up(servers, paths, headers, args)
        log = servers.portal_log
        runs = {
            "baseline": wrk_run(
                "baseline: one query + template",
                servers.baseline_port,
                ["/"],
                {},
                args.connections,
                args,
                None,
            ),
            "search": wrk_run(
                "search partial, query mix",
                servers.portal_port,
                paths,
                headers,
                args.connections,
                args,
                log,
            ),
            "search_light": wrk_run(
                "search partial, query mix", servers.portal_port, paths, headers, 1, args, log
            ),
        }
        for group, kinds in KEY_GROUPS.items():
            runs[group] = wrk_run(
                f"search partial, {group}",
                servers.portal_port,
                [query.path for query in mix if query.kind in kinds],
                headers,
                args.connections,
                args,
                log,
            )
        return runs


# --- summary ---------------------------------------------------------------------------------


def summary_print(results: dict, runs: dict | None, customers: int) -> bool:
    """The targets of the issue's table for search, each PASS or FAIL."""
    targets = []
    for kind in NAME_KINDS:
        targets.append(
            Target.at_most(
                f"SQL p95, {kind}", percentile(results[kind].search_ms, 95), SQL_TARGET_MS
            )
        )
    bad_plans = [kind for kind, result in results.items() if result.plan_ok is False]
    targets.append(
        Target(
            "plans use indexes (no Seq Scan on customers)",
            f"{len(results) - len(bad_plans)}/{len(results)} kinds",
            "all kinds",
            verdict(not bad_plans),
        )
    )
    if runs:
        for kind in NAME_KINDS:
            targets.append(
                Target.at_most(
                    f"HTTP p95 c=1, {kind}",
                    percentile(results[kind].http_ms, 95),
                    NAME_HTTP_TARGET_MS,
                )
            )
        baseline = runs["baseline"]
        for group, kinds in KEY_GROUPS.items():
            timings = [ms for kind in kinds for ms in results[kind].http_ms]
            targets.append(
                Target.at_most(
                    f"HTTP p95 c=1, {group}", percentile(timings, 95), KEY_HTTP_TARGET_MS
                )
            )
            targets.append(
                Target.ratio(
                    f"throughput c=8 / baseline, {group}",
                    runs[group],
                    baseline,
                    KEY_THROUGHPUT_TARGET,
                )
            )
        targets.append(
            Target.at_most(
                "HTTP p95 c=1 (wrk), whole mix", runs["search_light"].p95_ms, MIX_HTTP_TARGET_MS
            )
        )
        targets.append(
            Target.ratio(
                "throughput c=8 / baseline, whole mix",
                runs["search"],
                baseline,
                MIX_THROUGHPUT_TARGET,
            )
        )
        targets.append(
            Target("(info) HTTP p95 at c=8, whole mix", f"{runs['search'].p95_ms:.1f} ms", "-", "-")
        )
    return targets_print(f"Summary ({customers:,} customers in the main organization)", targets)


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
    wrk_arguments(parser)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-http", action="store_true", help="SQL and plans only")
    parser.add_argument(
        "--explain-analyze", action="store_true", help="also EXPLAIN ANALYZE one query per kind"
    )
    parser.add_argument(
        "--against-revision",
        metavar="REVISION",
        help="only compare the name searches' SQL at this earlier revision and at head",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    if not (args.no_http or args.against_revision) and not shutil.which(args.wrk):
        parser.error("wrk is not installed (Debian: apt-get install -y wrk), or use --no-http")
    return args


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the whole benchmark and print the summary."""
    args = arguments(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so finally blocks and atexit stop the servers
    started = time.monotonic()
    say(f"== Servers (data in {args.data_dir})")
    urls = services(args.data_dir, "portal_bench")
    app = portal_app(urls)
    owner_engine = sa.create_engine(urls.database_owner_url, poolclass=sa.pool.NullPool)
    app_engine = sa.create_engine(urls.database_url, poolclass=sa.pool.NullPool)
    try:
        counts = data_seed(app, owner_engine, args)
        server_facts(owner_engine)
        mix = query_mix(app, args.per_kind, args.seed)
        mix_print(mix)
        if args.against_revision:
            revisions_compare(app, app_engine, mix, args.against_revision, args.rounds)
            return 0
        results = sql_measure(app_engine, mix, args.rounds, args.seed)
        plans_check(app_engine, mix, results)
        if args.explain_analyze:
            plans_analyze(owner_engine, mix)
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
