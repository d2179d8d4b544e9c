"""The organization settings page (org admins)."""

from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from portal.security import role_required
from portal.settings import bp
from portal.settings.forms import OrganizationSettingsForm
from portal.settings.services import organization_settings_get, organization_settings_update

INVALID = 422


@bp.route("/", methods=["GET", "POST"])
@role_required("org_admin")
def edit():
    """Show and change the organization's settings."""
    form = OrganizationSettingsForm(obj=organization_settings_get())
    if form.validate_on_submit():
        organization_settings_update(
            max_credit_limit=form.max_credit_limit.data, actor=current_user
        )
        flash("Configuración guardada.", "success")
        return redirect(url_for("settings.edit"), 303)
    status = INVALID if form.is_submitted() else 200
    return render_template("settings/edit.html", form=form), status
