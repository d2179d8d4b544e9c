"""Passwords: users change their own; an admin reset gives a temporary one (24 h, change first)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.audit import AuditEntry
from portal.auth.models import StaffUser
from portal.db import organization_scope
from portal.extensions import db
from tests import factories
from tests.conftest import PortalClient

NEW_PASSWORD = "tres tigres tristes en panamá"


def _row(app, user) -> StaffUser:
    with app.app_context(), organization_scope(user.organization_id):
        row = db.session.scalar(
            sa.select(StaffUser).where(StaffUser.staff_user_id == user.staff_user_id)
        )
        db.session.expunge(row)
        return row


def _set(app, user, **values) -> None:
    with app.app_context(), organization_scope(user.organization_id):
        db.session.execute(
            sa.update(StaffUser)
            .where(StaffUser.staff_user_id == user.staff_user_id)
            .values(**values)
        )
        db.session.commit()


def _change(client, current, new, confirm=None):
    client.get("/password")
    return client.post(
        "/password",
        {"current_password": current, "password": new, "password_confirm": confirm or new},
    )


@pytest.fixture
def admin(login_as):
    client = login_as("org_admin")
    client.get("/users/")
    return client


def _reset(admin, user):
    """Reset through the confirmation page; returns the redirect to the result page."""
    admin.get(f"/users/{user.staff_user_id}/reset-password")
    return admin.post(f"/users/{user.staff_user_id}/reset-password", {"confirm": "yes"})


def _temporary_from(page: str) -> str:
    return re.search(r'id="temporary-password">([^<]+)<', page).group(1)


# --- changing one's own password -------------------------------------------------------------


def test_every_user_reaches_change_password_from_the_menu(login_as):
    client = login_as("branch_staff")
    assert 'href="/password"' in client.get("/customers/").text
    page = client.get("/password")
    assert page.status_code == 200 and "Cambiar contraseña" in page.text


def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(app, login_as, org_a):
    user = org_a.users["credit_staff"]
    here = login_as("credit_staff")
    elsewhere = login_as("credit_staff")
    response = _change(here, factories.TEST_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Contraseña cambiada" in here.get("/customers/", follow_redirects=True).text
    assert here.get("/customers/").status_code == 200
    assert elsewhere.get("/customers/").status_code == 302
    assert PortalClient(app.test_client()).login(user.email).status_code == 401
    assert PortalClient(app.test_client()).login(user.email, NEW_PASSWORD).status_code == 302
    with app.app_context(), organization_scope(org_a.organization_id):
        entry = db.session.scalar(
            sa.select(AuditEntry).where(AuditEntry.action == "staff.password_changed")
        )
    assert entry.actor_id == user.staff_user_id and NEW_PASSWORD not in str(entry.after)


@pytest.mark.parametrize(
    "current, new, confirm, message",
    [
        ("not my password", NEW_PASSWORD, None, "La contraseña actual no es correcta."),
        (factories.TEST_PASSWORD, "corta", None, "al menos 12 caracteres"),
        (factories.TEST_PASSWORD, "x" * 129, None, "como máximo 128"),
        (factories.TEST_PASSWORD, "password1234", None, "demasiado común"),
        (factories.TEST_PASSWORD, "qwertyuiop123", None, "demasiado común"),
        (factories.TEST_PASSWORD, "123456789012", None, "demasiado común"),
        (factories.TEST_PASSWORD, "aaaaaaaaaaaaaaaa", None, "demasiado común"),
        (factories.TEST_PASSWORD, NEW_PASSWORD, "otra cosa distinta", "no coinciden"),
        (factories.TEST_PASSWORD, factories.TEST_PASSWORD, None, "distinta de la actual"),
        ("", NEW_PASSWORD, None, "Ingrese su contraseña actual."),
    ],
)
def test_a_refused_change_says_why_and_changes_nothing(
    app, login_as, org_a, current, new, confirm, message
):
    user = org_a.users["branch_staff"]
    client = login_as("branch_staff")
    before = _row(app, user).password_hash
    response = _change(client, current, new, confirm)
    assert response.status_code == 400
    assert message in response.text
    assert _row(app, user).password_hash == before
    assert client.get("/customers/").status_code == 200


def test_a_password_made_of_the_users_own_name_or_email_is_refused(app, org_a):
    user = factories.staff_create(
        org_a.organization_id, ["branch_staff"], full_name="Maricarmen Quintero"
    )
    client = PortalClient(app.test_client())
    client.login(user.email)
    response = _change(client, factories.TEST_PASSWORD, "maricarmenquintero")
    assert response.status_code == 400 and "demasiado común" in response.text


# --- temporary passwords from an admin reset -------------------------------------------------


def test_reset_asks_for_confirmation_first(app, admin, org_a):
    user = org_a.users["credit_staff"]
    before = _row(app, user).password_hash
    page = admin.get(f"/users/{user.staff_user_id}/reset-password")
    assert page.status_code == 200 and "Sí, restablecer" in page.text
    assert user.email in page.text
    unconfirmed = admin.post(f"/users/{user.staff_user_id}/reset-password")
    assert unconfirmed.status_code == 303
    assert unconfirmed.headers["Location"] == f"/users/{user.staff_user_id}/reset-password"
    assert _row(app, user).password_hash == before


def test_the_temporary_password_is_shown_once_and_a_reload_issues_none(app, admin, org_a):
    user = org_a.users["credit_staff"]
    response = _reset(admin, user)
    assert response.status_code == 303
    result_url = response.headers["Location"]
    first = admin.get(result_url)
    temporary = _temporary_from(first.text)
    issued = _row(app, user).password_hash
    reload = admin.get(result_url)
    assert reload.status_code == 200
    assert temporary not in reload.text and "temporary-password" not in reload.text
    assert "ya se mostró" in reload.text
    assert _row(app, user).password_hash == issued  # no second password was issued
    assert PortalClient(app.test_client()).login(user.email, temporary).status_code == 302


def test_a_temporary_password_must_be_changed_before_anything_else(app, admin, org_a):
    user = org_a.users["credit_staff"]
    temporary = _temporary_from(admin.get(_reset(admin, user).headers["Location"]).text)
    client = PortalClient(app.test_client())
    response = client.login(user.email, temporary)
    assert response.status_code == 302 and response.headers["Location"] == "/password"
    for path in ("/", "/customers/", "/credit/aging", "/segments/"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/password", path
    htmx = client.get("/customers/?q=a", headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"] == "/password"
    page = client.get("/password")
    assert page.status_code == 200 and "Su contraseña es temporal" in page.text
    posted = client.post("/customers/new", {"first_name": "X"})
    assert posted.status_code == 302 and posted.headers["Location"] == "/password"
    assert _change(client, temporary, NEW_PASSWORD).status_code == 302
    assert client.get("/customers/").status_code == 200
    assert _row(app, user).password_temporary_until is None


def test_a_user_with_a_temporary_password_can_still_log_out(app, admin, org_a):
    user = org_a.users["branch_staff"]
    temporary = _temporary_from(admin.get(_reset(admin, user).headers["Location"]).text)
    client = PortalClient(app.test_client())
    client.login(user.email, temporary)
    client.get("/password")
    assert client.post("/logout").headers["Location"] == "/login"
    assert client.get("/customers/").headers["Location"].startswith("/login")


def test_an_expired_temporary_password_cannot_log_in(app, admin, org_a):
    user = org_a.users["branch_staff"]
    before = datetime.now(UTC)
    temporary = _temporary_from(admin.get(_reset(admin, user).headers["Location"]).text)
    after = datetime.now(UTC)
    expires = _row(app, user).password_temporary_until
    assert before + timedelta(hours=24) <= expires <= after + timedelta(hours=24)
    _set(app, user, password_temporary_until=sa.func.now() - sa.text("interval '1 second'"))
    response = PortalClient(app.test_client()).login(user.email, temporary)
    assert response.status_code == 401
    assert "Su contraseña temporal venció. Pida a un administrador" in response.text
    # A wrong password still gets the generic message: the expiry tells nothing to a guesser.
    wrong = PortalClient(app.test_client()).login(user.email, "not the password")
    assert "Correo o contraseña incorrectos." in wrong.text and "venció" not in wrong.text


def test_a_password_an_admin_types_for_a_new_user_is_temporary_too(app, admin):
    admin.get("/users/new")
    admin.post(
        "/users/new",
        {
            "email": "recien@test.pa",
            "full_name": "Recién Llegada",
            "roles": ["branch_staff"],
            "password": "una clave bien larga",
        },
    )
    client = PortalClient(app.test_client())
    assert client.login("recien@test.pa", "una clave bien larga").headers["Location"] == "/password"


def test_an_admin_cannot_create_a_user_with_a_common_password(app, admin, org_a):
    admin.get("/users/new")
    response = admin.post(
        "/users/new",
        {
            "email": "comun@test.pa",
            "full_name": "Clave Común",
            "roles": ["branch_staff"],
            "password": "password1234",
        },
        follow_redirects=True,
    )
    assert response.status_code == 400 and "demasiado común" in response.text


# --- deactivation asks first ------------------------------------------------------------------


def test_deactivation_asks_for_confirmation_first(app, admin, org_a):
    user = org_a.users["credit_staff"]
    page = admin.get(f"/users/{user.staff_user_id}/active/off")
    assert page.status_code == 200 and "Sí, desactivar" in page.text
    assert admin.post(f"/users/{user.staff_user_id}/active/off").status_code == 303
    assert _row(app, user).is_active
    admin.post(f"/users/{user.staff_user_id}/active/off", {"confirm": "yes"})
    assert not _row(app, user).is_active
    admin.post(f"/users/{user.staff_user_id}/active/on")
    assert _row(app, user).is_active


def test_the_users_page_links_to_the_confirmation_pages(admin, org_a):
    page = admin.get("/users/").text
    user = org_a.users["credit_staff"]
    assert f'href="/users/{user.staff_user_id}/active/off"' in page
    assert f'href="/users/{user.staff_user_id}/reset-password"' in page


def test_guessing_the_current_password_through_the_change_form_is_throttled(app, login_as, org_a):
    client = login_as("branch_staff")
    for attempt in range(10):
        assert _change(client, f"adivinanza {attempt}", NEW_PASSWORD).status_code == 400
    assert _change(client, factories.TEST_PASSWORD, NEW_PASSWORD).status_code == 429
    other = login_as("credit_staff")  # the limit is per user
    assert _change(other, factories.TEST_PASSWORD, NEW_PASSWORD).status_code == 302
