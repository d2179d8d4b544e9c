"""`flask events send FILE`: sign and post events, for operators and tests."""

import json
import os
import time
import urllib.error
import urllib.request

import click
from flask import current_app
from flask.cli import AppGroup

from portal.events.ingest import signature_for

events_cli = AppGroup("events", help="Event ingestion tools.")


@events_cli.command("send")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--url",
    default=lambda: f"http://127.0.0.1:{os.environ.get('PORT', '5000')}/api/events",
    show_default="http://127.0.0.1:$PORT/api/events",
)
def events_send(file, url: str) -> None:
    """Sign FILE (one event or a JSON array) with EVENTS_SECRET and POST it."""
    body = file.read()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - operators choose the URL
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Timestamp": timestamp,
            "X-Signature": signature_for(current_app.config["EVENTS_SECRET"], timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            click.echo(f"{response.status} {json.dumps(json.load(response), ensure_ascii=False)}")
    except urllib.error.HTTPError as error:
        raise click.ClickException(
            f"{error.code} {error.read().decode(errors='replace')}"
        ) from None
