"""The organization settings page (org admins)."""

from flask import url_for
from flask_login import current_user

from portal.auth.permissions import permission_required
from portal.htmx import INVALID, done, form_page
from portal.settings import bp
from portal.settings.forms import OrganizationSettingsForm
from portal.settings.services import (
    FIELDS,
    organization_settings_get,
    organization_settings_update,
)


@bp.route("/", methods=["GET", "POST"])
@permission_required("settings.manage")
def edit():
    """Show and change the organization's settings."""
    form = OrganizationSettingsForm(obj=organization_settings_get())
    if form.validate_on_submit():
        organization_settings_update(
            actor=current_user, **{field: getattr(form, field).data for field in FIELDS}
        )
        return done("Configuración guardada.", redirect_to=url_for("settings.edit"))
    status = INVALID if form.is_submitted() else 200
    return form_page("settings/edit.html", form=form, status=status)
