"""Checkout API benchmark: POST /api/v1/credit/charges at c=8 over 10,000 accounts.

    python -m bench.api [--accounts 10000] [--duration 20] [--connections 8]

Every request charges US$1.00 to one of the accounts (rotating) for a new order, with its own
Idempotency-Key, through gunicorn (2 workers x 4 threads) like production; the bare-Flask
baseline (bench/baseline_app.py, one query and a template) is measured in the same run.
Targets (issue 12): p95 <= 20 ms and throughput >= 0.4 x the baseline.
"""

import argparse
import os
import secrets
import uuid
from pathlib import Path

import sqlalchemy as sa

from bench.harness import (
    PROJECT_ROOT,
    WRK_DONE,
    Target,
    _scope,
    lua_table,
    organization_ensure,
    owner_engine_for,
    portal_and_baseline,
    portal_app,
    say,
    schema_rebuild,
    services,
    targets_print,
    wrk_arguments,
    wrk_run,
    wrk_script_run,
)

DATA = PROJECT_ROOT / ".data" / "bench-api"
ORGANIZATION = uuid.UUID("00000000-0000-4000-8000-00000000a11a")
P95_GOAL_MS = 20.0
RATIO_GOAL = 0.4

# Each request: the next account (threads start apart), a new order id and Idempotency-Key.
CHARGE_SCRIPT = (
    """
local customers = {%(customers)s}
local headers = {%(headers)s}
local thread_count = 0
local counter = 0

function setup(thread)
  thread:set("tag", thread_count)
  thread_count = thread_count + 1
end

function request()
  counter = counter + 1
  local customer = customers[((tag * 1237 + counter) %% #customers) + 1]
  local order = string.format("%(run)s-%%04x-4000-8000-%%012x", tag, counter)
  headers["Idempotency-Key"] = order
  local body = '{"customer_id":"' .. customer .. '","order_id":"' .. order ..
    '","order_number":"B-' .. tag .. '-' .. counter .. '","amount":"1.00"}'
  return wrk.format("POST", "/api/v1/credit/charges", headers, body)
end
"""
    + WRK_DONE
)


def accounts_load(owner: sa.Engine, count: int) -> list[str]:
    """`count` active customers, each with an approved account far from its limit."""
    with owner.begin() as connection:
        _scope(connection, ORGANIZATION)
        ids = (
            connection.execute(
                sa.text(
                    """
                INSERT INTO customers (organization_id, customer_id, first_name, last_name,
                                       email, status)
                SELECT :org, gen_random_uuid(), 'Cliente', 'Bench ' || n,
                       'bench' || n || '@api.pa', 'active'
                FROM generate_series(1, :count) AS n
                RETURNING customer_id
                """
                ),
                {"org": ORGANIZATION, "count": count},
            )
            .scalars()
            .all()
        )
        connection.execute(
            sa.text(
                """
                INSERT INTO credit_accounts (organization_id, customer_id, credit_limit,
                                             credit_used, payment_term_days, status, approved_at)
                SELECT :org, customer_id, 1000000, 0, 30, 'approved', current_date
                FROM unnest(CAST(:ids AS uuid[])) AS c(customer_id)
                """
            ),
            {"org": ORGANIZATION, "ids": ids},
        )
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM (ANALYZE) customers, credit_accounts")
    return [str(customer_id) for customer_id in ids]


def api_key(app) -> str:
    """A key with every scope for the benchmark organization."""
    from portal.api.services import api_key_create
    from portal.audit import SYSTEM_ACTOR
    from portal.db import organization_scope

    with app.app_context(), organization_scope(ORGANIZATION):
        _, key = api_key_create(
            name="Bench", scopes=["credit:charge", "credit:read"], actor=SYSTEM_ACTOR
        )
    return key


def charge_script(customers: list[str], key: str) -> str:
    """The wrk script for one run (a fresh run prefix keeps its order ids new)."""
    return CHARGE_SCRIPT % {
        "customers": ", ".join(f'"{customer}"' for customer in customers),
        "headers": lua_table(
            {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        ),
        "run": secrets.token_hex(4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--data-dir", type=Path, default=DATA)
    wrk_arguments(parser)
    args = parser.parse_args()
    # The per-key limit guards production; here it would only measure itself.
    os.environ["API_RATE_LIMIT"] = "1000000 per minute"
    urls = services(args.data_dir, "portal_bench_api")
    owner = owner_engine_for(urls)
    say(f"== preparing {args.accounts:,} approved accounts")
    schema_rebuild(owner)
    app = portal_app(urls)
    with app.app_context():
        organization_ensure(ORGANIZATION, "Tienda Bench API")
    customers = accounts_load(owner, args.accounts)
    key = api_key(app)
    with portal_and_baseline(
        urls,
        args.data_dir,
        workers=args.workers,
        threads=args.threads,
        pgbouncer=args.pgbouncer,
    ) as servers:
        say("== warm-up (not counted)")
        warm = argparse.Namespace(**(vars(args) | {"duration": min(5, args.duration)}))
        wrk_run("baseline", servers.baseline_port, ["/"], {}, 1, warm, None)
        wrk_script_run(
            "POST charges",
            servers.portal_port,
            charge_script(customers, key),
            1,
            warm,
            None,
            expected=(201,),
        )
        say(f"== measured: c={args.connections}, {args.duration} s each")
        baseline = wrk_run(
            "baseline (bare Flask)",
            servers.baseline_port,
            ["/"],
            {},
            args.connections,
            args,
            None,
        )
        charges = wrk_script_run(
            "POST /api/v1/credit/charges",
            servers.portal_port,
            charge_script(customers, key),
            args.connections,
            args,
            servers.portal_log,
            expected=(201,),
        )
    with owner.begin() as connection:
        _scope(connection, ORGANIZATION)
        made = connection.scalar(sa.text("SELECT count(*) FROM credit_usages"))
    say(f"  charges in the ledger: {made:,}")
    passed = targets_print(
        "Checkout API",
        [
            Target.at_most(
                f"POST charges p95 at c={args.connections}", charges.p95_ms, P95_GOAL_MS
            ),
            Target.ratio("POST charges throughput vs baseline", charges, baseline, RATIO_GOAL),
        ],
    )
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
