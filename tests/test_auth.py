"""Staff login: credentials, lockout, throttling, CSRF, session rotation, timeouts, roles."""

import re
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from portal.auth.models import ROLES, StaffUser
from portal.auth.services import login_backoff
from portal.db import organization_scope
from portal.extensions import db
from tests import factories
from tests.conftest import PortalClient

# /api/events is authenticated by its HMAC signature, not by a session.
PUBLIC_ENDPOINTS = {
    "auth.login",
    "health.healthz",
    "static",
    "events.ingest",
    "api.openapi",  # the API's reference document and page: no data
    "api.docs",
}


def _user_row(app, user) -> StaffUser:
    with app.app_context(), organization_scope(user.organization_id):
        return db.session.scalar(
            sa.select(StaffUser).where(StaffUser.staff_user_id == user.staff_user_id)
        )


def test_login_page_renders_in_spanish(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert "Iniciar sesión" in response.text and 'lang="es-PA"' in response.text


def test_login_success_redirects_and_records_last_login(app, client, org_a):
    user = org_a.users["branch_staff"]
    response = client.login(user.email.upper())
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/customers/").status_code == 200
    assert _user_row(app, user).last_login_at is not None


@pytest.mark.parametrize(
    "email, password",
    [
        ("nadie@test.pa", factories.TEST_PASSWORD),  # unknown user
        (None, "wrong password!"),  # right user, wrong password
    ],
)
def test_bad_credentials_are_refused_with_one_generic_message(client, org_a, email, password):
    response = client.login(email or org_a.users["branch_staff"].email, password)
    assert response.status_code == 401
    assert "Correo o contraseña incorrectos." in response.text
    assert client.get("/customers/").status_code == 302


def test_inactive_user_cannot_log_in(app, client, org_a):
    user = factories.staff_create(org_a.organization_id, ["branch_staff"], is_active=False)
    response = client.login(user.email)
    assert response.status_code == 401
    assert "Correo o contraseña incorrectos." in response.text


def _form_error(response) -> str:
    match = re.search(r'<p class="form-error" role="alert">[^<]*</p>', response.text)
    assert match, response.text
    return match.group(0)


def _fail_until_backoff(app, client, user) -> None:
    """Fail until the back-off starts, then keep it running (a slow machine must not outlast it)."""
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert client.login(user.email, "not the password").status_code == 401
    _move_backoff_end(app, user, "interval '10 minutes'")


def _let_backoff_pass(app, user) -> None:
    """Time passes: the account's back-off ends (without sleeping in a test)."""
    _move_backoff_end(app, user, "-interval '1 second'")


def _move_backoff_end(app, user, offset: str) -> None:
    with app.app_context(), organization_scope(user.organization_id):
        db.session.execute(
            sa.update(StaffUser)
            .where(StaffUser.staff_user_id == user.staff_user_id)
            .values(locked_until=sa.func.now() + sa.text(offset))
        )
        db.session.commit()


def test_backed_off_account_and_unknown_email_get_byte_identical_errors(app, client, org_a):
    user = org_a.users["credit_staff"]
    _fail_until_backoff(app, client, user)
    backed_off = client.login(user.email)  # even the right password is refused meanwhile
    unknown = client.login("nadie@test.pa")
    wrong = client.login(org_a.users["branch_staff"].email, "not the password")
    assert backed_off.status_code == unknown.status_code == wrong.status_code == 401
    assert _form_error(backed_off) == _form_error(unknown) == _form_error(wrong)
    assert "Correo o contraseña incorrectos." in _form_error(backed_off)
    assert "bloqueada" not in backed_off.text
    assert _user_row(app, user).locked_until is not None


def test_owner_logs_in_once_the_backoff_has_passed(app, client, org_a):
    user = org_a.users["credit_staff"]
    _fail_until_backoff(app, client, user)
    assert client.login(user.email).status_code == 401
    _let_backoff_pass(app, user)
    assert client.login(user.email).status_code == 302
    row = _user_row(app, user)
    assert row.failed_login_count == 0 and row.locked_until is None


def test_each_failure_after_the_backoff_doubles_the_wait(app, client, org_a):
    user = org_a.users["credit_staff"]
    client.get("/login")
    waits = []
    for attempt in range(app.config["LOGIN_MAX_FAILURES"] + 3):
        before = datetime.now(UTC)
        assert client.login(user.email, "not the password").status_code == 401
        after = datetime.now(UTC)
        row = _user_row(app, user)
        wait = login_backoff_for(app, attempt + 1)
        if wait is None:
            assert row.locked_until is None
            continue
        assert before + wait <= row.locked_until <= after + wait
        waits.append(wait.total_seconds())
        # An attempt during the back-off is not checked and does not count.
        assert client.login(user.email, "not the password").status_code == 401
        assert _user_row(app, user).failed_login_count == attempt + 1
        _let_backoff_pass(app, user)
    assert waits == [1, 2, 4, 8]


def login_backoff_for(app, failures: int):
    with app.app_context():
        return login_backoff(failures)


@pytest.mark.parametrize(
    "failures, seconds",
    [(1, None), (4, None), (5, 1), (6, 2), (10, 32), (14, 512), (15, 900), (200, 900)],
)
def test_login_backoff_is_exponential_and_capped_at_fifteen_minutes(app, failures, seconds):
    backoff = login_backoff_for(app, failures)
    assert (backoff.total_seconds() if backoff else None) == seconds


def test_failed_logins_are_throttled_per_address(app, client, org_a, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT_PER_ADDRESS", "3 per minute")
    for attempt in range(3):
        assert client.login(f"nadie{attempt}@test.pa", "x").status_code == 401
    response = client.login(org_a.users["org_admin"].email)
    assert response.status_code == 429
    assert "Demasiados intentos" in response.text


def test_successful_logins_do_not_count_towards_the_address_limit(app, client, org_a, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT_PER_ADDRESS", "2 per minute")
    for _ in range(4):
        assert client.login(org_a.users["org_admin"].email).status_code == 302
        client.get("/users/")
        client.post("/logout")


def test_post_without_csrf_token_is_refused(app, client, org_a):
    response = client.http.post(
        "/login",
        data={"email": org_a.users["org_admin"].email, "password": factories.TEST_PASSWORD},
    )
    assert response.status_code == 400
    logged_in = PortalClient(app.test_client())
    logged_in.login(org_a.users["org_admin"].email)
    assert logged_in.http.post("/logout").status_code == 400
    assert logged_in.get("/users/").status_code == 200  # still logged in


def test_login_starts_a_new_session(client, org_a):
    client.get("/login")
    with client.http.session_transaction() as session:
        session["planted"] = "by an attacker"
        session["sid"] = "fixed-session-id"
        session["auth_at"] = session["seen_at"] = time.time()
    client.get("/login")
    client.login(org_a.users["branch_staff"].email)
    with client.http.session_transaction() as session:
        assert "planted" not in session
        assert session["sid"] != "fixed-session-id"


def test_logout_revokes_the_session_even_for_a_copied_cookie(app, login_as):
    client = login_as("branch_staff")
    with client.http.session_transaction() as session:
        stolen = dict(session)
    client.get("/customers/")
    assert client.post("/logout").status_code == 302
    thief = PortalClient(app.test_client())
    with thief.http.session_transaction() as session:
        session.update(stolen)
    assert thief.get("/customers/").status_code == 302


@pytest.mark.parametrize("timer, age", [("seen_at", 31 * 60), ("auth_at", 12 * 3600 + 60)])
def test_idle_and_absolute_timeouts_end_the_session(login_as, timer, age):
    client = login_as("branch_staff")
    with client.http.session_transaction() as session:
        session[timer] = time.time() - age
    response = client.get("/customers/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "Su sesión expiró" in client.get("/login").text


def test_activity_within_the_idle_window_keeps_the_session(login_as):
    client = login_as("branch_staff")
    with client.http.session_transaction() as session:
        session["seen_at"] = time.time() - 29 * 60
    assert client.get("/customers/").status_code == 200


def test_deactivated_user_is_logged_out_at_the_next_request(app, login_as, org_a):
    client = login_as("branch_staff")
    admin = login_as("org_admin")
    admin.get("/users/")
    admin.post(f"/users/{org_a.users['branch_staff'].staff_user_id}/active/off", {"confirm": "yes"})
    assert client.get("/customers/").status_code == 302


@pytest.mark.parametrize(
    "missing", [("sid",), ("auth_at",), ("seen_at",), ("sid", "auth_at", "seen_at", "fingerprint")]
)
def test_a_cookie_without_the_session_markers_is_refused(app, login_as, missing):
    """An old-style or forged cookie, signed with the app's key, names a user but no session."""
    client = login_as("branch_staff")
    with client.http.session_transaction() as session:
        forged = {key: value for key, value in session.items() if key not in missing}
    assert "_user_id" in forged
    intruder = PortalClient(app.test_client())
    with intruder.http.session_transaction() as session:
        session.update(forged)
    response = intruder.get("/customers/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    with intruder.http.session_transaction() as session:
        assert "_user_id" not in session


def test_a_different_user_agent_ends_the_session(app, login_as):
    client = login_as("branch_staff")
    assert client.get("/customers/").status_code == 200
    with client.http.session_transaction() as session:
        copied = dict(session)
    thief = PortalClient(app.test_client())
    with thief.http.session_transaction() as session:
        session.update(copied)
    response = thief.get("/customers/", headers={"User-Agent": "Mozilla/5.0 (otro equipo)"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    # The session itself is over, also for the browser it belonged to.
    assert client.get("/customers/").status_code == 302


def test_every_route_checks_a_role(app):
    """Staff routes check roles; API operations check their key's scope instead."""

    def protected(view) -> bool:
        operation = getattr(view, "api_operation", None)
        return bool(getattr(view, "required_roles", None) or (operation and operation.scope))

    unprotected = [
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in PUBLIC_ENDPOINTS
        and not protected(app.view_functions[rule.endpoint])
    ]
    assert unprotected == []


def _role_pages(app):
    for rule in app.url_map.iter_rules():
        roles = getattr(app.view_functions[rule.endpoint], "required_roles", None)
        if rule.endpoint.startswith("mail."):
            continue  # development only: 404 elsewhere (tests/test_mail_outbox.py)
        if roles and "GET" in rule.methods and not rule.arguments:
            yield rule.rule, set(roles)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_role_gets_403_on_pages_of_other_roles(app, login_as, role):
    client = login_as(role)
    pages = list(_role_pages(app))
    assert pages
    for path, roles in pages:
        expected = {200, 302} if role in roles else {403}
        assert client.get(path).status_code in expected, (role, path)


def test_anonymous_user_is_sent_to_login(client):
    response = client.get("/customers/")
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]


def test_next_parameter_cannot_redirect_off_site(client, org_a):
    client.get("/login?next=//evil.example/x")
    response = client.http.post(
        "/login?next=//evil.example/x",
        data={
            "email": org_a.users["branch_staff"].email,
            "password": factories.TEST_PASSWORD,
            "csrf_token": client.csrf_token,
        },
    )
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize(
    "email",
    [
        "",
        "x" * 300 + "@test.pa",
        "' OR 1=1 --",
        "admin@test.pa'; DROP TABLE staff_users; --",
        "josé@ñandú.pa",
        "\x00@test.pa",
        "🙂@test.pa",
    ],
)
def test_login_bad_input_is_a_clean_refusal(client, email):
    response = client.login(email, "x" * 5000)
    assert response.status_code in {400, 401}
    assert "Traceback" not in response.text
