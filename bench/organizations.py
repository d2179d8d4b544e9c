"""Many organizations in one database: is each one's search as fast as when it is alone?

    python -m bench.organizations                      # 10 organizations x 100,000 customers
    python -m bench.organizations --organizations 4 --customers 50000

Starts its own embedded PostgreSQL and Redis under `.data/bench-organizations` with two
databases on the one server: `portal_bench_org_alone` holds the first organization alone
(`--customers`, plus the customers whose names carry digits), `portal_bench_organizations` holds
it among the others, each loaded to the same size with its own customers. The first
organization's rows are the same in both (same generator, same seed), so its query mix is the
same. Then every organization's own search mix (the queries and the timing of `bench.search`:
every kind, `--per-kind` queries, page and capped count, as the app role with RLS on) is timed
in both databases, interleaved: each of the `--rounds` rounds (after a warm-up round) visits the
alone organization and every organization of the shared database in a random order, so whatever
else the machine does falls on all of them alike.

It prints the page p50 / p95 of every kind per organization beside the alone figures, and PASS
when the first organization among the others (the same customers, so the same queries as
alone) keeps every kind's p95 within `--tolerance` (1.25 x) of the alone p95 or within 1 ms of it
(below a few milliseconds the noise of one machine is of that order). The other organizations'
figures are shown beside them without a verdict: their queries are of the same kinds but not
the same (drawn from their own customers), so they differ with the draw as much as with the
database (an e-mail prefix that matches more customers). The data stays for later runs
(`--fresh` starts over). The embedded servers only: the comparison needs both databases on one
server. docs/scaling.md records the figures.
"""

import argparse
import os
import random
import shutil
import signal
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from bench.harness import (
    PROJECT_ROOT,
    organization_ensure,
    owner_engine_for,
    percentile,
    portal_app,
    say,
    services,
)
from bench.search import (
    NAME_KINDS,
    customers_ensure,
    digit_names_ensure,
    query_mix,
    query_time,
    search_statements,
)

KINDS_SHOWN = (*NAME_KINDS, "email_prefix", "phone_local", "document", "recent")
ALONE = "alone"


def _organization(number: int) -> tuple[uuid.UUID, str, int, str]:
    """(id, name, first customer number, e-mail domain) of the n-th benchmark organization.

    Phones are +5076 and the number modulo 10^7: a multiple of 10^7 keeps every organization's
    customers clear of the digit names' numbers (9,000,000 on).
    """
    return (
        uuid.UUID(f"00000000-0000-4000-8000-0000000c{number:04x}"),
        f"Cadena {number:02d}",
        number * 10_000_000,
        f"cadena{number:02d}.pa",
    )


class Database:
    """One of the two databases: the migrated app, and engines as the owner and the app role."""

    def __init__(self, data_dir: Path, name: str):
        urls = services(data_dir, name)
        self.app = portal_app(urls)
        self.owner = owner_engine_for(urls)
        self.app_role = sa.create_engine(urls.database_url, poolclass=sa.pool.NullPool)

    def load(self, organizations: list, customers: int, chunk: int) -> None:
        """Top each organization up to `customers` (and its digit names), then VACUUM ANALYZE."""
        started = time.perf_counter()
        loaded = 0
        with self.app.app_context():
            for organization_id, name, start, domain in organizations:
                organization_ensure(organization_id, name)
                count, added = customers_ensure(
                    organization_id, customers, start=start, domain=domain, chunk=chunk
                )
                added += digit_names_ensure(organization_id)
                loaded += added
                say(f"  {name}: {count:,} customers ({added:,} loaded now)")
        if loaded:
            with self.owner.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                # Every table the load wrote (the customers' triggers fill others), so
                # autovacuum does not visit them in the middle of the timing.
                c.exec_driver_sql("VACUUM (ANALYZE)")
        say(f"  {loaded:,} rows loaded in {time.perf_counter() - started:.1f} s")

    def dispose(self) -> None:
        self.owner.dispose()
        self.app_role.dispose()


def _interleaved(targets: list[tuple], rounds: int, seed: int) -> dict[str, dict[str, list]]:
    """Page times (ms) per target and kind; every round visits the targets in a random order.

    A target is (name, database, organization id, query mix)."""
    rng = random.Random(seed)
    pages: dict[str, dict[str, list]] = {name: {} for name, *_ in targets}
    statements = {query.text: search_statements(query.text) for *_, mix in targets for query in mix}
    connections = {}
    try:
        for _, database, _, _ in targets:
            if id(database) not in connections:
                connection = database.app_role.connect()
                connection.exec_driver_sql("SET statement_timeout = '30s'")
                connection.commit()
                connections[id(database)] = connection
        for round_number in range(rounds + 1):  # round 0 warms the caches, not recorded
            for name, database, organization_id, mix in rng.sample(targets, len(targets)):
                for query in rng.sample(mix, len(mix)):
                    page_ms, *_ = query_time(
                        connections[id(database)], statements[query.text], organization_id
                    )
                    if round_number:
                        pages[name].setdefault(query.kind, []).append(page_ms)
            say(
                f"  round {round_number}/{rounds} done" + (" (warm-up)" if not round_number else "")
            )
    finally:
        for connection in connections.values():
            connection.close()
    return pages


def arguments(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=PROJECT_ROOT / ".data" / "bench-organizations"
    )
    parser.add_argument("--organizations", type=int, default=10)
    parser.add_argument("--customers", type=int, default=100_000, help="in each organization")
    parser.add_argument("--chunk", type=int, default=200_000)
    parser.add_argument("--per-kind", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=1.25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fresh", action="store_true", help="delete the data and start over")
    return parser.parse_args(argv)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Load both databases, then time every organization's mix against the alone one's."""
    args = arguments(argv)
    if os.environ.get("DATABASE_URL"):
        raise SystemExit("bench.organizations needs its embedded servers: unset DATABASE_URL")
    signal.signal(signal.SIGTERM, _interrupt)
    if args.fresh:
        shutil.rmtree(args.data_dir, ignore_errors=True)
    started = time.monotonic()
    organizations = [_organization(number) for number in range(1, args.organizations + 1)]
    alone = Database(args.data_dir, "portal_bench_org_alone")
    shared = Database(args.data_dir, "portal_bench_organizations")
    try:
        say("\n== The first organization alone in its database")
        alone.load(organizations[:1], args.customers, args.chunk)
        say(f"\n== {len(organizations)} organizations in one database")
        shared.load(organizations, args.customers, args.chunk)
        say("\n== Query mixes (each organization's own customers)")
        targets = [
            (ALONE, alone, organizations[0][0], _mix(alone, organizations[0][0], args)),
            *(
                (name, shared, organization_id, _mix(shared, organization_id, args))
                for organization_id, name, _, _ in organizations
            ),
        ]
        say(
            f"\n== Search SQL as the app role, {args.rounds} rounds, interleaved"
            f" ({len(targets)} mixes of {len(targets[0][3])} queries)"
        )
        passed = _summary(_interleaved(targets, args.rounds, args.seed), args)
    except KeyboardInterrupt:
        say("\nInterrupted; stopping the servers.")
        return 130
    finally:
        alone.dispose()
        shared.dispose()
    say(f"\nDone in {time.monotonic() - started:.0f} s; stopping Redis and PostgreSQL.")
    return 0 if passed else 1


def _mix(database: Database, organization_id: uuid.UUID, args) -> list:
    return query_mix(database.app, args.per_kind, args.seed, organization_id)


def _first_organization(pages: dict) -> str:
    """The first organization of the shared database (the one whose data the alone one holds)."""
    return next(name for name in pages if name != ALONE)


def _summary(pages: dict[str, dict[str, list]], args) -> bool:
    """Per organization and kind: page p50 / p95 (ms), and the p95 against the alone one."""
    say(f"\n== Page p50 / p95 per organization (ms; {args.customers:,} customers each)")
    say(f"  {'organization':<14}" + "".join(f"{kind[:13]:>14}" for kind in KINDS_SHOWN))
    medians, p95 = (
        {
            name: {kind: percentile(kinds[kind], share) for kind in KINDS_SHOWN}
            for name, kinds in pages.items()
        }
        for share in (50, 95)
    )
    for name in pages:
        say(
            f"  {name:<14}"
            + "".join(
                f"{medians[name][kind]:>7.2f}/{p95[name][kind]:<6.2f}" for kind in KINDS_SHOWN
            )
        )
    first = _first_organization(pages)
    same = all(
        p95[first][kind] <= max(p95[ALONE][kind] * args.tolerance, p95[ALONE][kind] + 1.0)
        for kind in KINDS_SHOWN
    )
    worst = max((p95[first][kind] / p95[ALONE][kind], kind) for kind in KINDS_SHOWN)
    say(
        f"\n  {first}, the same customers and queries as alone: largest p95 ratio {worst[0]:.2f}"
        f" ({worst[1]}); every p95 within {args.tolerance} x or 1 ms of alone:"
        f" {'PASS' if same else 'FAIL'}"
    )
    worst = max(
        (figures[kind] / medians[ALONE][kind], name, kind)
        for name, figures in medians.items()
        if name != ALONE
        for kind in KINDS_SHOWN
    )
    say(
        f"  every organization (its own customers, so other queries of each kind; no verdict):"
        f" largest p50 ratio to alone {worst[0]:.2f} ({worst[1]}, {worst[2]})"
    )
    return same


if __name__ == "__main__":
    sys.exit(main())
