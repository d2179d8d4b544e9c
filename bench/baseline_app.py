"""The throughput baseline: a bare Flask endpoint that runs one trivial query and a tiny template.

Served by gunicorn with the portal's worker settings (`gunicorn bench.baseline_app:app`) and the
same app-role DATABASE_URL and driver settings (psycopg's prepared statements off behind a
transaction pooler, DATABASE_TRANSACTION_POOLER), so the portal can be compared with it in the same
run.
"""

import os
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, render_template

from portal.config import DevelopmentConfig

engine = sa.create_engine(
    os.environ["DATABASE_URL"],
    pool_pre_ping=True,
    pool_size=10,
    max_overflow=10,
    connect_args=DevelopmentConfig().SQLALCHEMY_ENGINE_OPTIONS.get("connect_args", {}),
)
app = Flask(__name__, template_folder=str(Path(__file__).resolve().parent / "templates"))


@app.get("/")
def index():
    """One query, one template."""
    with engine.connect() as connection:
        now = connection.execute(sa.text("SELECT now()")).scalar_one()
    return render_template("baseline.html", now=now)
