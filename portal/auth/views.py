"""Login, logout, password change and the landing redirect."""

import unicodedata
from urllib.parse import unquote, urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user

from portal import clock
from portal.auth import bp
from portal.auth.forms import LoginForm, PasswordChangeForm
from portal.auth.permissions import permission_required
from portal.auth.services import (
    PasswordError,
    session_end,
    session_start,
    staff_authenticate,
    staff_password_change,
)
from portal.extensions import limiter
from portal.home import home_summary
from portal.validation import form_error


def _login_failed(response) -> bool:
    return g.get("login_failed", False)


def _unsafe_character(text: str) -> bool:
    return "\\" in text or any(
        character.isspace() or unicodedata.category(character).startswith("C") for character in text
    )


def safe_next(target: str | None) -> str:
    """`target` when it is a path of this site, otherwise the home page.

    Browsers strip tabs and newlines, treat a backslash as a slash and tolerate leading spaces,
    so `/\\evil`, `/%09/evil` or ` //evil` would leave the site: any of those characters, raw or
    percent-decoded, any scheme or host, and anything that is not a single-slash path is refused.
    """
    if not target:
        return url_for("auth.home")
    for text in (target, unquote(target)):
        try:
            parts = urlsplit(text)
        except ValueError:  # e.g. an unclosed IPv6 host
            return url_for("auth.home")
        if (
            _unsafe_character(text)
            or parts.scheme
            or parts.netloc
            or not text.startswith("/")
            or text.startswith("//")
        ):
            return url_for("auth.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"],
    methods=["POST"],
    deduct_when=_login_failed,
)
def login():
    """Show the login form and sign staff in."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.home"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        result = staff_authenticate(email=form.email.data, password=form.password.data)
        if result.user is not None:
            session_start(result.user)
            if session.get("password_change_required"):
                return redirect(url_for("auth.password_change"))
            return redirect(safe_next(request.args.get("next")))
        g.login_failed = True
        form.form_errors.append(result.error)
        status = 401
    elif form.is_submitted():
        status = 400
    return render_template("auth/login.html", form=form), status


# Someone holding a session must not guess its owner's password through this form.
CHANGE_FORM_FAILURES_LIMIT = "10 per 15 minutes"


def _password_change_key() -> str:
    return f"password-change:{current_user.get_id()}"


@bp.route("/password", methods=["GET", "POST"])
@permission_required("account.use")
@limiter.limit(
    CHANGE_FORM_FAILURES_LIMIT,
    key_func=_password_change_key,
    methods=["POST"],
    deduct_when=_login_failed,
)
def password_change():
    """Change one's own password; the other sessions end, this one goes on."""
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            staff_password_change(
                staff_user_id=current_user.staff_user_id,
                current_password=form.current_password.data,
                new_password=form.password.data,
            )
        except PasswordError as error:
            g.login_failed = error.field == "current_password"
            form_error(form, str(error), error.field)
        else:
            session_start(current_user._get_current_object())
            flash("Contraseña cambiada. Sus otras sesiones se cerraron.", "success")
            return redirect(url_for("auth.home"))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "auth/password_change.html",
        form=form,
        required=session.get("password_change_required", False),
    ), status


@bp.post("/logout")
@permission_required("account.use")
def logout():
    """End the session."""
    session_end()
    flash("Sesión cerrada.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/")
@permission_required("account.use")
def home():
    """What needs me today: each item links to the list where the work is."""
    return render_template(
        "home.html", summary=home_summary(user=current_user), today=clock.today()
    )
