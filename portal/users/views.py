"""Staff users page for org admins."""

import uuid

from flask import abort, redirect, request, session, url_for
from flask_login import current_user

from portal.auth.permissions import permission_required
from portal.htmx import done, form_page, refused, render
from portal.users import bp
from portal.users.forms import StaffUserCreateForm, StaffUserEditForm
from portal.users.services import (
    StaffUserError,
    staff_user_create,
    staff_user_get,
    staff_user_list,
    staff_user_reset_password,
    staff_user_set_active,
    staff_user_update,
    temporary_password_hold,
    temporary_password_take,
)
from portal.validation import form_error


def _user_or_404(staff_user_id: uuid.UUID):
    user = staff_user_get(staff_user_id)
    if user is None:
        abort(404)
    return user


@bp.get("/")
@permission_required("users.manage")
def index():
    """List the organization's staff users."""
    return render("users/index.html", users=staff_user_list())


@bp.route("/new", methods=["GET", "POST"])
@permission_required("users.manage")
def create():
    """Create a staff user."""
    form = StaffUserCreateForm()
    if form.validate_on_submit():
        try:
            user = staff_user_create(
                email=form.email.data,
                full_name=form.full_name.data,
                roles=form.roles.data,
                password=form.password.data,
                temporary=True,
                actor=current_user,
            )
        except StaffUserError as error:
            form_error(form, str(error), error.field)
        else:
            return done(
                f"Usuario {user.email} creado.", redirect_to=url_for("users.index"), code=302
            )
    status = 400 if form.is_submitted() else 200
    return form_page("users/form.html", form=form, user=None, status=status)


@bp.route("/<uuid:staff_user_id>", methods=["GET", "POST"])
@permission_required("users.manage")
def edit(staff_user_id: uuid.UUID):
    """Change a staff user's name and roles."""
    user = _user_or_404(staff_user_id)
    form = StaffUserEditForm(obj=user)
    if form.validate_on_submit():
        try:
            staff_user_update(
                user=user, full_name=form.full_name.data, roles=form.roles.data, actor=current_user
            )
        except StaffUserError as error:
            form_error(form, str(error), error.field)
        else:
            return done("Usuario actualizado.", redirect_to=url_for("users.index"), code=302)
    status = 400 if form.is_submitted() else 200
    return form_page("users/form.html", form=form, user=user, status=status)


def _confirmed() -> bool:
    # The confirmation page posts confirm=yes; a bare POST (a stray click, a forged form that
    # skipped the page) only leads to the question.
    return request.form.get("confirm") == "yes"


def _confirmation(user, *, title: str, question: str, button: str):
    return render("users/confirm.html", user=user, title=title, question=question, button=button)


@bp.route("/<uuid:staff_user_id>/active/off", methods=["GET", "POST"])
@permission_required("users.manage")
def deactivate(staff_user_id: uuid.UUID):
    """Ask, then deactivate a staff user: their sessions end at their next request."""
    user = _user_or_404(staff_user_id)
    if request.method == "POST" and not _confirmed():
        return redirect(url_for("users.deactivate", staff_user_id=staff_user_id), 303)
    if request.method == "GET":
        return _confirmation(
            user,
            title="Desactivar usuario",
            question="No podrá iniciar sesión y sus sesiones abiertas se cerrarán.",
            button="Sí, desactivar",
        )
    try:
        staff_user_set_active(user=user, active=False, actor=current_user)
    except StaffUserError as error:
        return refused(str(error), redirect_to=url_for("users.index"), code=302)
    return done("Usuario desactivado.", redirect_to=url_for("users.index"), code=302)


@bp.post("/<uuid:staff_user_id>/active/on")
@permission_required("users.manage")
def activate(staff_user_id: uuid.UUID):
    """Activate a staff user again."""
    user = _user_or_404(staff_user_id)
    staff_user_set_active(user=user, active=True, actor=current_user)
    return done("Usuario activado.", redirect_to=url_for("users.index"), code=302)


@bp.route("/<uuid:staff_user_id>/reset-password", methods=["GET", "POST"])
@permission_required("users.manage")
def reset_password(staff_user_id: uuid.UUID):
    """Ask, then set a new temporary password and redirect to the page that shows it once."""
    user = _user_or_404(staff_user_id)
    if request.method == "POST" and not _confirmed():
        return redirect(url_for("users.reset_password", staff_user_id=staff_user_id), 303)
    if request.method == "GET":
        return _confirmation(
            user,
            title="Restablecer contraseña",
            question=(
                "Se generará una contraseña temporal válida por 24 horas, que deberá cambiar al"
                " iniciar sesión. Sus sesiones abiertas se cerrarán."
            ),
            button="Sí, restablecer",
        )
    temporary = staff_user_reset_password(user=user, actor=current_user)
    temporary_password_hold(sid=session["sid"], staff_user_id=staff_user_id, password=temporary)
    return redirect(url_for("users.reset_password_done", staff_user_id=staff_user_id), 303)


@bp.get("/<uuid:staff_user_id>/reset-password/done")
@permission_required("users.manage")
def reset_password_done(staff_user_id: uuid.UUID):
    """Show the temporary password of the reset just made, once; a reload shows it no more."""
    user = _user_or_404(staff_user_id)
    temporary = temporary_password_take(sid=session["sid"], staff_user_id=staff_user_id)
    return render("users/password_reset.html", user=user, temporary_password=temporary)
