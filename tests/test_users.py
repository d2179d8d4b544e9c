"""Org admins manage staff users; every change is audited and bad input writes nothing."""

import re

import pytest
import sqlalchemy as sa

from portal.audit import AuditEntry
from portal.auth.models import StaffUser
from portal.db import organization_scope
from portal.extensions import db
from tests import factories
from tests.conftest import PortalClient


def _users(app, organization_id) -> dict[str, StaffUser]:
    with app.app_context(), organization_scope(organization_id):
        return {user.email: user for user in db.session.scalars(sa.select(StaffUser))}


def _audit_actions(app, organization_id) -> list[str]:
    with app.app_context(), organization_scope(organization_id):
        return list(db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.audit_id)))


@pytest.fixture
def admin(login_as):
    client = login_as("org_admin")
    client.get("/users/new")
    return client


def test_admin_lists_only_own_staff(admin, org_a, org_b):
    page = admin.get("/users/").text
    assert org_a.users["credit_staff"].email in page
    assert org_b.users["credit_staff"].email not in page


def test_admin_creates_a_user_who_can_log_in(app, admin, org_a):
    response = admin.post(
        "/users/new",
        {
            "email": "  Nueva.Persona@Test.PA ",
            "full_name": " Nueva Persona ",
            "roles": ["credit_staff", "branch_staff"],
            "password": "una clave bien larga",
        },
    )
    assert response.status_code == 302
    created = _users(app, org_a.organization_id)["nueva.persona@test.pa"]
    assert created.full_name == "Nueva Persona"
    assert sorted(created.roles) == ["branch_staff", "credit_staff"]
    assert created.password_hash.startswith("$argon2id$")
    assert "staff.created" in _audit_actions(app, org_a.organization_id)
    assert (
        PortalClient(app.test_client())
        .login("nueva.persona@test.pa", "una clave bien larga")
        .status_code
        == 302
    )


def test_duplicate_email_in_the_own_organization_is_a_field_error(app, admin, org_a):
    before = _users(app, org_a.organization_id)
    response = admin.post(
        "/users/new",
        {
            "email": org_a.users["credit_staff"].email,
            "full_name": "Copia",
            "roles": ["branch_staff"],
            "password": "una clave bien larga",
        },
        follow_redirects=True,
    )
    assert response.status_code == 400
    assert "Ya existe un usuario con ese correo." in response.text
    assert _users(app, org_a.organization_id).keys() == before.keys()


def _create_response_shape(response) -> tuple:
    return response.status_code, response.headers.get("Location")


def test_an_email_used_in_another_organization_is_not_revealed(app, admin, org_a, org_b):
    """Creating it answers exactly like a new address, and both accounts work on their own."""
    taken = org_b.users["org_admin"].email
    fresh = admin.post(
        "/users/new",
        {
            "email": "nunca.usado@test.pa",
            "full_name": "Nueva",
            "roles": ["branch_staff"],
            "password": "una clave bien larga",
        },
    )
    admin.get("/users/new")
    elsewhere = admin.post(
        "/users/new",
        {
            "email": taken,
            "full_name": "Homónimo",
            "roles": ["branch_staff"],
            "password": "otra clave muy distinta",
        },
    )
    assert _create_response_shape(elsewhere) == _create_response_shape(fresh) == (302, "/users/")
    assert f"Usuario {taken} creado." in admin.get("/users/").text
    assert taken in _users(app, org_a.organization_id)
    # The other organization's account is untouched and still logs in with its own password.
    other = PortalClient(app.test_client())
    assert other.login(taken).status_code == 302
    assert other.get("/users/").status_code == 200
    assert org_b.users["credit_staff"].email in other.get("/users/").text
    # The new one logs in to organization A (to change its temporary password first).
    mine = PortalClient(app.test_client())
    assert mine.login(taken, "otra clave muy distinta").headers["Location"] == "/password"
    assert "Homónimo" in mine.get("/password").text
    # Logging in to one account never counts as a failure against the other.
    assert _users(app, org_b.organization_id)[taken].failed_login_count == 0


@pytest.mark.parametrize(
    "field, value",
    [
        ("email", "no-es-correo"),
        ("email", "a" * 250 + "@test.pa"),
        ("email", "' OR 1=1 --@x"),
        ("full_name", ""),
        ("full_name", "x" * 201),
        ("full_name", "Nombre\x07con control"),
        ("roles", ["superuser"]),
        ("roles", []),
        ("password", "corta"),
        ("password", "x" * 200),
    ],
)
def test_create_user_bad_input_changes_nothing(app, admin, org_a, field, value):
    data = {
        "email": "valido@test.pa",
        "full_name": "Válido Ñandú 🙂",
        "roles": ["branch_staff"],
        "password": "una clave bien larga",
    } | {field: value}
    before = _users(app, org_a.organization_id)
    response = admin.post("/users/new", data, follow_redirects=True)
    assert response.status_code == 400
    assert "field-error" in response.text or "form-error" in response.text
    assert _users(app, org_a.organization_id).keys() == before.keys()


def test_admin_changes_roles_with_audit_before_and_after(app, admin, org_a):
    user = org_a.users["branch_staff"]
    admin.get(f"/users/{user.staff_user_id}")
    response = admin.post(
        f"/users/{user.staff_user_id}", {"full_name": "Luis B.", "roles": ["credit_approver"]}
    )
    assert response.status_code == 302
    assert _users(app, org_a.organization_id)[user.email].roles == ["credit_approver"]
    with app.app_context(), organization_scope(org_a.organization_id):
        entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "staff.updated"))
    assert entry.before["roles"] == ["branch_staff"] and entry.after["roles"] == ["credit_approver"]
    assert entry.actor_id == org_a.users["org_admin"].staff_user_id


def test_admin_cannot_remove_own_admin_role_or_deactivate_self(app, admin, org_a):
    me = org_a.users["org_admin"]
    admin.get(f"/users/{me.staff_user_id}")
    response = admin.post(
        f"/users/{me.staff_user_id}",
        {"full_name": "Yo", "roles": ["branch_staff"]},
        follow_redirects=True,
    )
    assert response.status_code == 400
    admin.post(f"/users/{me.staff_user_id}/active/off", {"confirm": "yes"})
    assert _users(app, org_a.organization_id)[me.email].roles == ["org_admin"]
    assert _users(app, org_a.organization_id)[me.email].is_active


def _reset(admin, user) -> str:
    """Reset through the confirmation page; the temporary password shown on the result page."""
    admin.get(f"/users/{user.staff_user_id}/reset-password")
    response = admin.post(f"/users/{user.staff_user_id}/reset-password", {"confirm": "yes"})
    assert response.status_code == 303
    page = admin.get(response.headers["Location"]).text
    return re.search(r'id="temporary-password">([^<]+)<', page).group(1)


def test_reset_password_shows_a_temporary_password_once_and_unlocks(app, admin, org_a):
    user = factories.staff_create(org_a.organization_id, ["branch_staff"], failed_login_count=3)
    temporary = _reset(admin, user)
    assert PortalClient(app.test_client()).login(user.email).status_code == 401
    assert PortalClient(app.test_client()).login(user.email, temporary).status_code == 302
    assert "staff.password_reset" in _audit_actions(app, org_a.organization_id)


def test_users_cli_creates_a_user(app, org_a):
    result = app.test_cli_runner().invoke(
        args=[
            "users",
            "create",
            "--organization-id",
            str(org_a.organization_id),
            "--email",
            "cli@test.pa",
            "--full-name",
            "Desde CLI",
            "--role",
            "credit_staff",
            "--password",
            "una clave bien larga",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "cli@test.pa" in _users(app, org_a.organization_id)


def test_users_cli_refuses_a_short_password(app, org_a):
    result = app.test_cli_runner().invoke(
        args=[
            "users",
            "create",
            "--organization-id",
            str(org_a.organization_id),
            "--email",
            "cli@test.pa",
            "--full-name",
            "Desde CLI",
            "--role",
            "credit_staff",
            "--password",
            "corta",
        ]
    )
    assert result.exit_code != 0 and "al menos 12" in result.output


def test_a_password_reset_ends_the_users_existing_sessions(app, login_as, admin, org_a):
    victim = login_as("credit_staff")
    assert victim.get("/customers/").status_code == 200
    _reset(admin, org_a.users["credit_staff"])
    assert victim.get("/customers/").status_code == 302  # the old session no longer works
    assert admin.get("/users/").status_code == 200  # the admin's own session is untouched
