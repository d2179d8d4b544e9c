"""`flask audit verify`: recompute the audit log's hash chains and name the first broken link."""

import sys
import uuid

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from portal.audit import audit_verify
from portal.db import ORG_SETTING
from portal.extensions import db

audit_cli = AppGroup("audit", help="Audit log tools.")


@audit_cli.command("verify")
@click.option("--organization", type=click.UUID, help="Check only this organization's chain.")
def audit_verify_command(organization: uuid.UUID | None) -> None:
    """Check every organization as the owner (DATABASE_OWNER_URL), or one as the app role."""
    owner_url = current_app.config.get("DATABASE_OWNER_URL")
    if owner_url is None and organization is None:
        raise click.UsageError("Set DATABASE_OWNER_URL to check every organization.")
    engine = sa.create_engine(owner_url, poolclass=sa.pool.NullPool) if owner_url else db.engine
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "SELECT set_config(%(name)s, %(value)s, true)",
                {"name": ORG_SETTING, "value": str(organization or "")},
            )
            report = audit_verify(connection, organization_id=organization)
    finally:
        if owner_url:
            engine.dispose()
    if report.reason is not None:
        click.echo(
            f"audit chain BROKEN: organization {report.broken_organization_id}, "
            f"audit_id {report.broken_audit_id}: {report.reason}",
            err=True,
        )
        sys.exit(1)
    click.echo(f"audit chain intact: {report.rows} rows in {report.organizations} organization(s)")
