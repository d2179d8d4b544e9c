"""Login, logout and the landing redirect."""

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from portal.auth import bp
from portal.auth.forms import LoginForm
from portal.auth.models import ROLES
from portal.auth.services import session_end, session_start, staff_authenticate
from portal.extensions import limiter
from portal.security import role_required


def _login_failed(response) -> bool:
    return g.get("login_failed", False)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("auth.home")


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
            return redirect(_safe_next(request.args.get("next")))
        g.login_failed = True
        form.form_errors.append(result.error)
        status = 401
    elif form.is_submitted():
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@role_required(*ROLES)
def logout():
    """End the session."""
    session_end()
    flash("Sesión cerrada.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/")
@role_required(*ROLES)
def home():
    """Send each user to the page their work starts from."""
    return redirect(url_for("customers.index"))
