"""Staff users page for org admins."""

import uuid

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.extensions import db
from portal.security import role_required
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
)
from portal.validation import form_error


def _user_or_404(staff_user_id: uuid.UUID):
    user = staff_user_get(staff_user_id)
    if user is None:
        abort(404)
    return user


@bp.get("/")
@role_required("org_admin")
def index():
    """List the organization's staff users."""
    return render_template("users/index.html", users=staff_user_list())


@bp.route("/new", methods=["GET", "POST"])
@role_required("org_admin")
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
            )
        except StaffUserError as error:
            db.session.rollback()
            form_error(form, str(error), error.field)
        else:
            db.session.commit()
            flash(f"Usuario {user.email} creado.", "success")
            return redirect(url_for("users.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("users/form.html", form=form, user=None), status


@bp.route("/<uuid:staff_user_id>", methods=["GET", "POST"])
@role_required("org_admin")
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
            db.session.rollback()
            form_error(form, str(error), error.field)
        else:
            db.session.commit()
            flash("Usuario actualizado.", "success")
            return redirect(url_for("users.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("users/form.html", form=form, user=user), status


@bp.post("/<uuid:staff_user_id>/active/<any(on, off):state>")
@role_required("org_admin")
def set_active(staff_user_id: uuid.UUID, state: str):
    """Activate or deactivate a staff user."""
    user = _user_or_404(staff_user_id)
    try:
        staff_user_set_active(user=user, active=state == "on", actor=current_user)
    except StaffUserError as error:
        db.session.rollback()
        flash(str(error), "error")
    else:
        db.session.commit()
        flash("Usuario activado." if state == "on" else "Usuario desactivado.", "success")
    return redirect(url_for("users.index"))


@bp.post("/<uuid:staff_user_id>/reset-password")
@role_required("org_admin")
def reset_password(staff_user_id: uuid.UUID):
    """Set a new temporary password and show it once."""
    user = _user_or_404(staff_user_id)
    temporary = staff_user_reset_password(user=user)
    db.session.commit()
    return render_template("users/password_reset.html", user=user, temporary_password=temporary)
