"""Staff page benchmark: /healthz and the heavy pages over HTTP at 1,000,000 customers.

`python -m bench.pages` uses the same servers and data as bench/search.py (`.data/bench`: one
organization with 1,000,000 customers plus two others, seeded once), adds what the pages need
once (written straight into the tables by bench/harness.py), then measures through gunicorn with
a logged-in member of staff, against the bare-Flask baseline measured in the same run:

- /healthz throughput;
- the customer page (360) of a customer with 5 addresses, a credit account with 200 charges and
  payments, and 50 audit rows: HTTP p95 and throughput;
- the approval queue with 50 pending requests, that account's page (200 lines), a statement of
  1,000 lines, and the aging report over 100,000 accounts: HTTP p95 each.

Pages are read through HTTP only. It ends with the targets of issue #9, PASS or FAIL.
"""

import argparse
import signal
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench import search
from bench.harness import (
    Target,
    credit_account_load,
    credit_portfolio_load,
    credit_requests_load,
    http_timings,
    login,
    owner_engine_for,
    page_headers,
    percentile,
    portal_and_baseline,
    portal_app,
    say,
    services,
    staff_ensure,
    targets_print,
    wrk_arguments,
    wrk_run,
    wrk_warm_up,
)

PAGES_EMAIL = "bench-credit@bench.pa"
PAGES_PASSWORD = "bench-portal-2026"  # noqa: S105 - a throwaway user in the benchmark's own database
PAGES_ROLES = ["branch_staff", "credit_staff", "credit_approver"]
PAGES_DOMAIN = "paginas.pa"
PAGES_START = 8_000_000  # customer_rows index of the page customers (deterministic ids)
QUEUE_SIZE = 50
AGING_ACCOUNTS = 100_000
HEALTHZ_RATIO = 0.8
CUSTOMER_PAGE_MS = 50.0
CUSTOMER_PAGE_RATIO = 0.4
CREDIT_PAGE_MS = 100.0


def page_customers() -> list[uuid.UUID]:
    """The ids of the page customers: [360, statement, 50 queue, 100,000 aging]."""
    from portal.seed import customer_rows

    count = 2 + QUEUE_SIZE + AGING_ACCOUNTS
    return [row[0] for row in customer_rows(count, start=PAGES_START, email_domain=PAGES_DOMAIN)]


def pages_data_ensure(app, owner: sa.Engine) -> dict[str, uuid.UUID]:
    """Load what the pages show (once); the ids of the customer and accounts to request."""
    from portal.seed import customer_rows, customers_bulk_load

    ids = page_customers()
    customer, statement_customer = ids[0], ids[1]
    queue, portfolio = ids[2 : 2 + QUEUE_SIZE], ids[2 + QUEUE_SIZE :]
    organization = search.MAIN_ORG[0]
    with app.app_context():
        staff_id = staff_ensure(organization, PAGES_EMAIL, PAGES_PASSWORD, PAGES_ROLES)
    say("\n== Page data (each part once)")
    started = time.perf_counter()
    if not _present(owner, "SELECT 1 FROM customers WHERE customer_id = :id", customer):
        with app.app_context():
            customers_bulk_load(
                organization,
                customer_rows(len(ids), start=PAGES_START, email_domain=PAGES_DOMAIN),
            )
    if not _present(owner, "SELECT 1 FROM addresses WHERE customer_id = :id", customer):
        with owner.begin() as connection:
            _scope(connection, organization)
            connection.execute(
                sa.text(
                    """
                    INSERT INTO addresses (organization_id, customer_id, address_type,
                        address_line1, city, is_default)
                    SELECT :org, :customer, (ARRAY['shipping', 'billing', 'both'])[1 + n % 3],
                           'Calle ' || n || ', Edificio ' || n, 'Panamá', n = 1
                    FROM generate_series(1, 5) AS n
                    """
                ),
                {"org": organization, "customer": customer},
            )
            connection.execute(
                sa.text(
                    """
                    INSERT INTO audit_log (organization_id, actor_id, actor_label, action,
                        entity_type, entity_id, before, after, created_at)
                    SELECT :org, :staff, 'Persona Benchmark', 'customer.updated', 'customer',
                           CAST(:customer AS text), jsonb_build_object('notes', 'antes ' || n),
                           jsonb_build_object('notes', 'después ' || n),
                           now() - make_interval(hours => n)
                    FROM generate_series(1, 50) AS n
                    """
                ),
                {"org": organization, "customer": customer, "staff": staff_id},
            )
    for owner_id, charges, payments in ((customer, 120, 80), (statement_customer, 600, 400)):
        if not _present(owner, ACCOUNT_OF, owner_id):
            credit_account_load(
                owner,
                organization,
                owner_id,
                charges=charges,
                payments=payments,
                staff_id=staff_id,
            )
    if not _present(owner, ACCOUNT_OF, queue[-1]):
        credit_requests_load(owner, organization, queue, staff_id)
    if not _present(owner, ACCOUNT_OF, portfolio[-1]):
        credit_portfolio_load(owner, organization, portfolio, staff_id)
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in (
            "customers",
            "addresses",
            "audit_log",
            "credit_accounts",
            "credit_usages",
            "credit_payments",
            "credit_payment_allocations",
            "credit_account_aging",
        ):
            connection.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
    say(f"  ready in {time.perf_counter() - started:.1f} s")
    with owner.begin() as connection:
        _scope(connection, organization)
        accounts = dict(
            connection.execute(
                sa.text(
                    "SELECT customer_id, credit_account_id FROM credit_accounts"
                    " WHERE customer_id IN (:customer, :statement)"
                ),
                {"customer": customer, "statement": statement_customer},
            ).all()
        )
    return {
        "customer": customer,
        "account": accounts[customer],
        "statement_account": accounts[statement_customer],
    }


ACCOUNT_OF = "SELECT 1 FROM credit_accounts WHERE customer_id = :id"


def _present(owner: sa.Engine, statement: str, identifier: uuid.UUID) -> bool:
    with owner.begin() as connection:
        _scope(connection, search.MAIN_ORG[0])
        return connection.execute(sa.text(statement), {"id": identifier}).first() is not None


def _scope(connection: sa.Connection, organization_id: uuid.UUID) -> None:
    connection.execute(
        sa.text("SELECT set_config('app.current_organization_id', :org, true)"),
        {"org": str(organization_id)},
    )


def pages_measure(urls, ids: dict, args) -> list[Target]:
    """Time each page over HTTP (c=1) and load the throughput targets with wrk (c=8)."""
    since = (date.today() - timedelta(days=1000)).isoformat()
    pages = {
        "customer page (360)": (f"/customers/{ids['customer']}", CUSTOMER_PAGE_MS),
        "approval queue (50 pending)": ("/credit/queue", CREDIT_PAGE_MS),
        "account page (200 lines)": (f"/credit/accounts/{ids['account']}", CREDIT_PAGE_MS),
        "statement (1,000 lines)": (
            f"/credit/accounts/{ids['statement_account']}/statement?start={since}",
            CREDIT_PAGE_MS,
        ),
        "aging (100,000 accounts)": ("/credit/aging", CREDIT_PAGE_MS),
        # issue #11's target for the collections worklist over the same overdue accounts
        "collections worklist (100,000 accounts)": ("/collections/", CREDIT_PAGE_MS),
    }
    say(f"\n== HTTP (gunicorn {args.workers} workers x {args.threads} threads)")
    with portal_and_baseline(
        urls,
        args.data_dir,
        workers=args.workers,
        threads=args.threads,
        pgbouncer=args.pgbouncer,
    ) as servers:
        headers = page_headers(login(servers.portal_port, PAGES_EMAIL, PAGES_PASSWORD))
        targets = []
        say(f"\n== Pages, one connection, {args.http_samples} requests each (ms)")
        for label, (path, goal) in pages.items():
            try:
                timings = http_timings(
                    servers.portal_port,
                    [path],
                    headers,
                    args.http_samples,
                    timeout=args.page_timeout,
                )
            except TimeoutError:
                say(f"  {label:<40} no answer within {args.page_timeout} s   {path}")
                targets.append(
                    Target(
                        f"HTTP p95 c=1, {label}",
                        f"> {args.page_timeout} s (timed out)",
                        f"<= {goal:g} ms",
                        "FAIL",
                    )
                )
                continue
            say(
                f"  {label:<40} p50 {percentile(timings, 50):8.1f}   "
                f"p95 {percentile(timings, 95):8.1f}   {path}"
            )
            targets.append(Target.at_most(f"HTTP p95 c=1, {label}", percentile(timings, 95), goal))
        say("\n== wrk")
        customer_path = pages["customer page (360)"][0]
        wrk_warm_up(servers, [customer_path], headers, args)
        log = servers.portal_log
        baseline = wrk_run(
            "baseline: one query + template", servers.baseline_port, ["/"], {}, 8, args, None
        )
        healthz = wrk_run("/healthz", servers.portal_port, ["/healthz"], {}, 8, args, log)
        customer = wrk_run(
            "customer page (360)", servers.portal_port, [customer_path], headers, 8, args, log
        )
    return [
        Target.ratio("throughput c=8 / baseline, /healthz", healthz, baseline, HEALTHZ_RATIO),
        *targets[:1],
        Target.ratio(
            "throughput c=8 / baseline, customer page", customer, baseline, CUSTOMER_PAGE_RATIO
        ),
        *targets[1:],
    ]


def arguments(argv: list[str] | None):
    """Command line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=search.PROJECT_ROOT / ".data" / "bench")
    parser.add_argument("--customers", type=int, default=1_000_000, help="in the main org")
    parser.add_argument("--other-customers", type=int, default=50_000, help="in each other org")
    parser.add_argument("--chunk", type=int, default=200_000, help="rows per bulk load")
    parser.add_argument("--http-samples", type=int, default=40, help="HTTP requests per page")
    parser.add_argument(
        "--page-timeout", type=int, default=120, help="seconds to wait for one page"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    wrk_arguments(parser)
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    """Seed (once), load the page data (once), measure, print the targets."""
    args = arguments(argv)
    signal.signal(signal.SIGTERM, search._interrupt)
    started = time.monotonic()
    say(f"== Servers (data in {args.data_dir})")
    urls = services(args.data_dir, "portal_bench")
    app = portal_app(urls)
    owner = owner_engine_for(urls)
    try:
        counts = search.data_seed(app, owner, args)
        ids = pages_data_ensure(app, owner)
        targets = pages_measure(urls, ids, args)
        passed = targets_print(
            f"Summary, pages ({counts[search.MAIN_ORG[0]]:,} customers in the organization)",
            targets,
        )
    except KeyboardInterrupt:
        say("\nInterrupted; stopping the servers.")
        return 130
    finally:
        owner.dispose()
    say(f"\nDone in {time.monotonic() - started:.0f} s; stopping Redis and PostgreSQL.")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
