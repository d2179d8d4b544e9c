"""`flask users …`: manage staff users from the command line."""

import uuid

import click
from flask.cli import AppGroup

from portal.audit import SYSTEM_ACTOR
from portal.auth.models import ROLES
from portal.db import organization_scope
from portal.users.services import StaffUserError, staff_user_create

users_cli = AppGroup("users", help="Manage staff users.")


@users_cli.command("create")
@click.option("--organization-id", required=True, type=click.UUID)
@click.option("--email", required=True)
@click.option("--full-name", required=True)
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(sorted(ROLES)))
@click.password_option()
def users_create(organization_id: uuid.UUID, email: str, full_name: str, roles, password: str):
    """Create a staff user in an organization."""
    with organization_scope(organization_id):
        try:
            user = staff_user_create(
                email=email,
                full_name=full_name,
                roles=list(roles),
                password=password,
                temporary=False,
                actor=SYSTEM_ACTOR,
            )
        except StaffUserError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"Created {user.email} ({user.staff_user_id})")
