"""Request-path budget at demo size: cProfile of 200 phone-lookup partials, and wrk.

    python -m bench.request_path profile   # per-layer budget through the Flask test client
    python -m bench.request_path charge    # the same for POST /api/v1/credit/charges
    python -m bench.request_path healthz   # the same for GET /healthz (no session)
    python -m bench.request_path wrk       # baseline, /healthz, phone partial (gunicorn 2 x 4)

Set PYTHONPATH to another checkout (git archive main | tar -x -C DIR) to measure that code.
"""

import cProfile
import os
import pstats
import re
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from portal.embedded import gunicorn_command, services_start
from portal.extensions import db

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("PORTAL_DATA_DIR", PROJECT_ROOT / ".data" / "request-path"))
EMAIL, PASSWORD = "path-staff@bench.pa", "path-portal-2026-x"
UA = "portal-bench/1.0"
PHONE_QUERY = "/customers/?q=6000-0001"


def prepare():
    urls = services_start(DATA, database="portal_path")
    os.environ.update(urls.environ())
    os.environ["PORTAL_ENV"] = "development"
    os.environ["LOG_LEVEL"] = "WARNING"
    from flask_migrate import upgrade

    from portal import create_app
    from portal.auth.models import StaffUser
    from portal.auth.services import password_hash
    from portal.db import organization_scope
    from portal.seed import demo_seed

    app = create_app()
    with app.app_context():
        upgrade()
        demo_seed()
    owner = sa.create_engine(urls.database_owner_url)
    with owner.begin() as c:
        org = c.exec_driver_sql(
            "SELECT organization_id FROM organizations ORDER BY name LIMIT 1"
        ).scalar()
        phone = c.exec_driver_sql(
            "SELECT phone FROM customers WHERE organization_id=%(o)s AND phone IS NOT NULL LIMIT 1",
            {"o": org},
        ).scalar()
    with app.app_context(), organization_scope(org):
        if not db.session.scalar(sa.select(StaffUser).where(StaffUser.email == EMAIL)):
            db.session.add(
                StaffUser(
                    email=EMAIL,
                    full_name="Bench",
                    roles=["branch_staff"],
                    password_hash=password_hash(PASSWORD),
                )
            )
            db.session.commit()
    digits = "".join(ch for ch in phone if ch.isdigit())[-8:]
    return app, urls, f"/customers/?q={digits[:4]}-{digits[4:]}"


def staff_lookup(app, path):
    """A logged-in member of staff's phone lookup partial, as a repeatable call."""
    client = app.test_client()
    page = client.get("/login", headers={"User-Agent": UA}).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    r = client.post(
        "/login",
        data={"csrf_token": token, "email": EMAIL, "password": PASSWORD},
        headers={"User-Agent": UA},
    )
    assert r.status_code == 302, r.status_code
    headers = {"HX-Request": "true", "User-Agent": UA}
    return lambda: client.get(path, headers=headers), 200


def api_charge(app):
    """US$1.00 charged with the demo key to an approved account, a new order each call."""
    import uuid

    from portal.demo.api import DEMO_API_KEY
    from portal.seed import DEMO_ORG_ID

    owner = sa.create_engine(os.environ["DATABASE_OWNER_URL"])
    with owner.begin() as c:
        c.exec_driver_sql(
            "SELECT set_config('app.current_organization_id', %(o)s, true)", {"o": str(DEMO_ORG_ID)}
        )
        # One approved account with room, opened straight in the table (the demo's credit
        # history needs the desk's staff, which `make run` creates and this bench does not).
        customer_id = c.exec_driver_sql(
            "INSERT INTO credit_accounts (organization_id, credit_account_id, customer_id,"
            "   credit_limit, status, approved_at)"
            " SELECT c.organization_id, gen_random_uuid(), c.customer_id, 1000000, 'approved',"
            "   now()"
            " FROM customers c WHERE c.organization_id = %(o)s AND c.status = 'active'"
            "   AND NOT EXISTS (SELECT 1 FROM credit_accounts a"
            "     WHERE a.customer_id = c.customer_id)"
            " ORDER BY c.customer_id LIMIT 1 RETURNING customer_id",
            {"o": DEMO_ORG_ID},
        ).scalar()
    client = app.test_client()
    auth = {"Authorization": f"Bearer {DEMO_API_KEY}"}

    def call():
        order = uuid.uuid4()
        return client.post(
            "/api/v1/credit/charges",
            json={
                "customer_id": str(customer_id),
                "order_id": str(order),
                "order_number": f"B-{order.hex[:8]}",
                "amount": "1.00",
            },
            headers=auth | {"Idempotency-Key": order.hex},
        )

    return call, 201


def profile(app, call, expected, n=200):
    statements = []
    sa.event.listen(
        db.engine, "before_cursor_execute", lambda *args, **kwargs: statements.append(1)
    )
    for _ in range(20):
        response = call()
        assert response.status_code == expected, (response.status_code, response.text[:300])
    statements.clear()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(n):
        call()
    profiler.disable()
    elapsed = (time.perf_counter() - started) / n * 1000
    profiler.dump_stats(os.environ.get("PROF_OUT", "request_path.prof"))
    stats = pstats.Stats(profiler)
    layers = {
        "whole request (test client)": ("app.py", "wsgi_app"),
        "middleware: before_request hooks": ("app.py", "preprocess_request"),
        "  rate-limit check (Flask-Limiter)": ("_extension.py", "_check_request_limit"),
        "  auth: scope_request": ("security.py", "scope_request"),
        "  auth: load_user": (None, "load_user"),
        "view": ("app.py", "dispatch_request"),
        "  template: render_template": ("templating.py", "render_template"),
        "SQL: cursor execute (psycopg)": ("cursor.py", "execute"),
        "after_request hooks": ("app.py", "process_response"),
        "  request log line": ("logs.py", "log_request"),
        "teardown (session remove)": ("app.py", "do_teardown_appcontext"),
    }
    print(
        f"{n} requests, {elapsed:.2f} ms each (wall, profiler on),"
        f" {stats.total_calls / n:,.0f} Python calls and {len(statements) / n:.1f} SQL"
        " statements each"
    )
    for label, (file, func) in layers.items():
        total = sum(
            v[3]
            for k, v in stats.stats.items()
            if k[2] == func and (file is None or k[0].endswith(file))
        )
        print(f"  {label:38s} {total / n * 1000:6.2f} ms")
    stats.sort_stats("cumulative").print_stats(18)


def wrk(urls, path):
    env = os.environ | urls.environ() | {"PORTAL_ENV": "development", "LOG_LEVEL": "WARNING"}
    procs = [
        subprocess.Popen(  # noqa: S603 - our own gunicorn command line
            gunicorn_command(5071), env=env, start_new_session=True, stderr=subprocess.DEVNULL
        ),
        subprocess.Popen(  # noqa: S603
            gunicorn_command(5072, target="bench.baseline_app:app"),
            env=env,
            start_new_session=True,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        time.sleep(6)
        from bench.harness import login

        cookie = login(5071, EMAIL, PASSWORD)
        for label, url, headers in (
            ("baseline", "http://127.0.0.1:5072/", []),
            ("/healthz", "http://127.0.0.1:5071/healthz", []),
            (
                "phone partial",
                "http://127.0.0.1:5071" + path,
                ["-H", f"Cookie: {cookie}", "-H", "HX-Request: true", "-H", f"User-Agent: {UA}"],
            ),
        ):
            out = subprocess.run(  # noqa: S603
                ["wrk", "-t2", "-c8", "-d10s", "--latency", *headers, url],  # noqa: S607
                capture_output=True,
                text=True,
            ).stdout
            rps = [
                line
                for line in out.splitlines()
                if any(mark in line for mark in ("Requests/sec", "Non-2xx", " 50%", " 99%"))
            ]
            print(label, "|", " | ".join(x.strip() for x in rps), flush=True)
    finally:
        for p in procs:
            os.killpg(p.pid, 15)
            p.wait()


if __name__ == "__main__":
    app, urls, path = prepare()
    print("query:", path)
    if sys.argv[1] == "profile":
        with app.app_context():
            profile(app, *staff_lookup(app, path))
    elif sys.argv[1] == "charge":
        with app.app_context():
            profile(app, *api_charge(app))
    elif sys.argv[1] == "healthz":
        with app.app_context():
            client = app.test_client()
            profile(app, lambda: client.get("/healthz"), 200)
    else:
        wrk(urls, path)
