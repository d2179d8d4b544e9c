"""`flask events …`: sign and post events, and manage per-organization signing keys."""

import json
import os
import time
import urllib.error
import urllib.request
import uuid

import click
from flask import current_app
from flask.cli import AppGroup

from portal.db import organization_scope
from portal.events.ingest import signature_for
from portal.events.services import event_key_create, event_key_revoke, event_keys_list

events_cli = AppGroup("events", help="Event ingestion tools.")


@events_cli.command("send")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--url",
    default=lambda: f"http://127.0.0.1:{os.environ.get('PORT', '5000')}/api/events",
    show_default="http://127.0.0.1:$PORT/api/events",
)
@click.option("--key-id", type=click.UUID, help="Sign with this organization key (X-Key-Id).")
@click.option("--key-secret", envvar="EVENTS_KEY_SECRET", help="Its secret; prefer the env.")
def events_send(file, url: str, key_id: uuid.UUID | None, key_secret: str | None) -> None:
    """Sign FILE (one event or a JSON array) with an organization key or EVENTS_SECRET; POST it."""
    if key_id and not key_secret:
        raise click.UsageError("--key-id needs the key's secret in EVENTS_KEY_SECRET.")
    secret = key_secret if key_id else current_app.config["EVENTS_SECRET"]
    if not secret:
        raise click.UsageError("No EVENTS_SECRET configured: pass --key-id.")
    body = file.read()
    timestamp = str(int(time.time()))
    key_header = {"X-Key-Id": str(key_id)} if key_id else {}
    request = urllib.request.Request(  # noqa: S310 - operators choose the URL
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Timestamp": timestamp,
            "X-Signature": signature_for(secret, timestamp, body),
        }
        | key_header,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            click.echo(f"{response.status} {json.dumps(json.load(response), ensure_ascii=False)}")
    except urllib.error.HTTPError as error:
        raise click.ClickException(
            f"{error.code} {error.read().decode(errors='replace')}"
        ) from None


@events_cli.command("key-create")
@click.option("--organization-id", required=True, type=click.UUID)
@click.option("--label", default="", help="What the key is for, e.g. 'orders 2026-12'.")
def events_key_create(organization_id: uuid.UUID, label: str) -> None:
    """Create a signing key for one organization and print its secret once."""
    with organization_scope(organization_id):
        key_id, secret = event_key_create(label=label[:100])
    click.echo(f"X-Key-Id: {key_id}")
    click.echo(f"Secret (shown only now): {secret}")


@events_cli.command("key-revoke")
@click.option("--organization-id", required=True, type=click.UUID)
@click.argument("key_id", type=click.UUID)
def events_key_revoke(organization_id: uuid.UUID, key_id: uuid.UUID) -> None:
    """Revoke a key: requests signed with it are refused from now on."""
    with organization_scope(organization_id):
        if not event_key_revoke(key_id=key_id):
            raise click.ClickException(f"No active key {key_id} in this organization.")
    click.echo(f"Revoked {key_id}")


@events_cli.command("key-list")
@click.option("--organization-id", required=True, type=click.UUID)
def events_key_list(organization_id: uuid.UUID) -> None:
    """List one organization's keys (never their secrets)."""
    with organization_scope(organization_id):
        for key in event_keys_list():
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            click.echo(f"{key.key_id}  {key.created_at:%Y-%m-%d %H:%M}  {state}  {key.label}")
