"""API keys on the settings page (org admins): create (the secret shown once) and revoke."""

import uuid

from flask import abort, request, url_for
from flask_login import current_user

from portal.api import keys_bp
from portal.api.forms import ApiKeyForm
from portal.api.selectors import api_keys_list
from portal.api.services import api_key_create, api_key_revoke
from portal.auth.permissions import permission_required
from portal.htmx import INVALID, done, form_page, render
from portal.security import shown_once_pop, shown_once_put

PARTIAL = "api/_keys.html"


def keys_section(**extra) -> dict:
    """What the keys section renders: the organization's keys and an empty form."""
    return {"key_form": ApiKeyForm(formdata=None), "keys": api_keys_list()} | extra


@keys_bp.get("/")
@permission_required("settings.manage")
def index():
    """The keys section; after a creation without JavaScript it shows the new key once."""
    new_key = shown_once_pop(request.args.get("shown"))
    return render("api/keys.html", PARTIAL, **keys_section(new_key=new_key))


@keys_bp.post("/")
@permission_required("settings.manage")
def create():
    """Create an API key; its secret is shown this once and never again."""
    form = ApiKeyForm()
    if not form.validate_on_submit():
        return form_page(
            "api/keys.html",
            PARTIAL,
            status=INVALID,
            page_url=url_for("api_keys.index"),
            key_form=form,
            keys=api_keys_list(),
        )
    key, secret = api_key_create(name=form.name.data, scopes=form.scopes.data, actor=current_user)
    return done(
        f"Clave «{key.name}» creada. Cópiela ahora: no se volverá a mostrar.",
        redirect_to=url_for("api_keys.index", shown=shown_once_put(secret)),
        partial=PARTIAL,
        context=lambda: keys_section(new_key=secret),
    )


@keys_bp.post("/<uuid:api_key_id>/revoke")
@permission_required("settings.manage")
def revoke(api_key_id: uuid.UUID):
    """Revoke an API key: its next request is refused."""
    try:
        key = api_key_revoke(api_key_id=api_key_id, actor=current_user)
    except LookupError:
        abort(404)
    return done(
        f"Clave «{key.name}» revocada.",
        redirect_to=url_for("api_keys.index"),
        partial=PARTIAL,
        context=keys_section,
    )
