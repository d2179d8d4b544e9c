"""Development only: the messages the local SMTP sink of `make run` caught (404 elsewhere)."""

from pathlib import Path

from flask import abort, current_app

from portal.auth.permissions import permission_required
from portal.htmx import render
from portal.mail import bp
from portal.mail.sink import sink_messages

SHOWN = 50


@bp.get("/")
@permission_required("account.use")
def caught():
    """The caught messages, newest first (development only)."""
    directory = current_app.config["DEV_MAIL_DIR"]
    if current_app.config["ENV_NAME"] != "development" or not directory:
        abort(404)
    messages = sink_messages(Path(directory), limit=SHOWN)
    return render("mail/caught.html", messages=messages, directory=directory)
