"""Sessions, roles and response headers: the rules every request goes through."""

import hashlib
import secrets
import time

from flask import Flask, Response, abort, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, logout_user

from portal.db import forget_organization, set_organization
from portal.extensions import login_manager
from portal.htmx import is_htmx
from portal.tasks import redis_connection

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
REVOKED_KEY = "portal:revoked-session:{}"
SEEN_AT_RESOLUTION = 60  # seconds
SESSION_ENDED = "Su sesión expiró. Inicie sesión nuevamente."
# What a user whose password is temporary may still reach before changing it.
PASSWORD_CHANGE_ENDPOINTS = {"auth.password_change", "auth.logout"}


def session_revoke(sid: str | None) -> None:
    """Make a session id unusable even if its cookie was copied."""
    if sid:
        ttl = int(current_app.config["SESSION_ABSOLUTE_TIMEOUT"].total_seconds())
        redis_connection().set(REVOKED_KEY.format(sid), 1, ex=ttl)


def session_fingerprint() -> str:
    """What ties a session to the browser that logged in: a digest of its User-Agent.

    Not the address: staff behind mobile networks and proxies change it during a shift.
    """
    user_agent = request.headers.get("User-Agent", "")
    return hashlib.sha256(user_agent.encode("utf-8", "replace")).hexdigest()[:32]


def _session_valid() -> bool:
    """A logged-in session carries all its markers, is within its timers, from this browser.

    Revocation is checked apart (session_revoked), in the Redis round trip that also fetches
    the cached user.
    """
    config = current_app.config
    now = time.time()
    try:
        authenticated_at, seen_at = float(session["auth_at"]), float(session["seen_at"])
        sid, fingerprint = session["sid"], session["fingerprint"]
    except (KeyError, TypeError, ValueError):
        return False  # a cookie without the markers would skip every check below
    return (
        isinstance(sid, str)
        and fingerprint == session_fingerprint()
        and now - authenticated_at <= config["SESSION_ABSOLUTE_TIMEOUT"].total_seconds()
        and now - seen_at <= config["SESSION_IDLE_TIMEOUT"].total_seconds()
    )


def _redirect(location: str):
    """A redirect that htmx follows with a full page load rather than swapping it into a part."""
    if is_htmx():
        return Response(status=204, headers={"HX-Redirect": location})
    return redirect(location)


def init_app(app: Flask) -> None:
    """Install the login manager settings, session checks and security headers."""
    from portal.auth.loader import session_revoked  # registers the user loader

    login_manager.login_view = "auth.login"
    login_manager.login_message = "Inicie sesión para continuar."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    # The cookie lives as long as the absolute timeout from login, so re-signing it on every
    # request extends nothing the server would honour; it is rewritten when seen_at moves.
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False

    @app.before_request
    def refuse_nul_bytes():
        # PostgreSQL text cannot hold NUL; no field of ours may contain one.
        values = [*request.args.values()]
        if request.mimetype in {"application/x-www-form-urlencoded", "multipart/form-data"}:
            values += request.form.values()
        if any("\x00" in value for value in values):
            abort(400)

    @app.before_request
    def scope_request():
        set_organization(None)
        if request.blueprint == "api":
            return None  # the API is scoped by its bearer key alone; cookies count for nothing
        if request.endpoint == "static" or ("sid" not in session and "_user_id" not in session):
            return None
        if not _session_valid() or session_revoked(session["sid"]):
            sid = session.get("sid")
            session_revoke(sid if isinstance(sid, str) else None)
            logout_user()
            session.clear()
            flash(SESSION_ENDED, "warning")
            return None
        if time.time() - session["seen_at"] > SEEN_AT_RESOLUTION:
            # Only a minute's precision is needed: this spares a new cookie on every request.
            session["seen_at"] = time.time()
        # Resolving the user now sets the organization before any view touches the database.
        if (
            current_user.is_authenticated
            and session.get("password_change_required")
            and request.endpoint not in PASSWORD_CHANGE_ENDPOINTS
        ):
            return _redirect(url_for("auth.password_change"))
        return None

    @app.teardown_appcontext
    def clear_scope(exception=None):
        forget_organization()

    @app.after_request
    def add_security_headers(response):
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        if current_app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if "sid" in session:
            response.headers.setdefault("Cache-Control", "no-store")
        return response


SHOWN_ONCE_KEY = "portal:shown-once:{}"
SHOWN_ONCE_SECONDS = 300


def shown_once_put(secret: str) -> str:
    """Keep a new secret for the page a redirect lands on; the redirect carries only a token.

    Neither the URL nor the (signed, not encrypted) session cookie may carry the secret.
    """
    token = secrets.token_urlsafe(16)
    redis_connection().set(SHOWN_ONCE_KEY.format(token), secret, ex=SHOWN_ONCE_SECONDS)
    return token


def shown_once_pop(token: str | None) -> str | None:
    """The secret kept under the token, deleted as it is read: a reload shows nothing."""
    if not token:
        return None
    value = redis_connection().getdel(SHOWN_ONCE_KEY.format(token[:64]))
    return value.decode() if value else None
