"""htmx answers: one URL serves the full page or, to htmx, just its fragment.

Every view answers through these helpers: `render` for "page or partial" (a refused form is the
same call with status=INVALID, so the form partial shows its errors), `done` and `refused` for
the outcome of an action (htmx gets the partial with the message and what `context()` returns,
read only then; a browser without JavaScript is redirected with the message flashed). With
toast=True htmx also gets the message as a toast (HX-Trigger), announced on whatever page it is.
`form_page` is `render` for a full-page form: refused without htmx, the page with its errors is
kept for one GET of the form's own URL (Post/Redirect/Get), so Back never re-posts.
"""

import json
import secrets
from collections.abc import Callable

from flask import flash, redirect, render_template, request, session

from portal.tasks import redis_connection

INVALID = 422


def is_htmx() -> bool:
    """True for requests made by htmx (HX-Request header), except history restores."""
    return request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )


def render(
    page_template: str,
    partial_template: str | None = None,
    /,
    *,
    status: int = 200,
    headers: dict | None = None,
    **context,
):
    """The partial for htmx requests (when there is one), the whole page otherwise."""
    template = partial_template if partial_template and is_htmx() else page_template
    return render_template(template, **context), status, headers or {}


_KEPT = "kept_form_page"  # session key: {"path", "key", "status"} of a refused form's page
KEPT_SECONDS = 600


def form_page(page_template: str, partial_template: str | None = None, /, *, status=200, **context):
    """`render` for a full-page form, with Post/Redirect/Get when a browser's POST is refused.

    The refused page (values and errors) is kept in Redis and the browser is sent (303) to the
    form's own URL, whose next GET shows it once; htmx still gets the partial with a 422.
    """
    own_url = request.full_path.rstrip("?")
    if request.method == "GET" and (kept := session.get(_KEPT)) and kept["path"] == own_url:
        session.pop(_KEPT)
        body = redis_connection().getdel(kept["key"])
        if body is not None:
            return body.decode(), kept["status"], {}
    body, status, headers = render(page_template, partial_template, status=status, **context)
    if status < 400 or request.method != "POST" or is_htmx():
        return body, status, headers
    key = f"kept-form:{secrets.token_urlsafe(16)}"
    redis_connection().set(key, body, ex=KEPT_SECONDS)
    session[_KEPT] = {"path": own_url, "key": key, "status": status}
    return redirect(own_url, 303)


def _toast(message: str) -> dict:
    # JSON escapes non-ASCII, so any name survives the latin-1 header (static/js/layout.js).
    return {"HX-Trigger": json.dumps({"portal:toast": {"message": message}})}


def _outcome(message, category, status, redirect_to, code, partial_template, headers, context):
    if partial_template and is_htmx():
        body = render_template(partial_template, message=message, **(context() if context else {}))
        return body, status, headers or {}
    flash(message, category)
    return redirect(redirect_to, code)


def done(
    message: str,
    *,
    redirect_to: str,
    code: int = 303,
    partial: str | None = None,
    headers: dict | None = None,
    context: Callable[[], dict] | None = None,
    toast: bool = False,
):
    """An action succeeded: htmx gets `partial` with the message, a browser a redirect."""
    if toast:
        headers = (headers or {}) | _toast(message)
    return _outcome(message, "success", 200, redirect_to, code, partial, headers, context)


def refused(
    message: str,
    *,
    redirect_to: str,
    code: int = 303,
    partial: str | None = None,
    headers: dict | None = None,
    context: Callable[[], dict] | None = None,
):
    """An action was refused: htmx gets `partial` with the reason (a 422), a browser a redirect."""
    return _outcome(message, "error", INVALID, redirect_to, code, partial, headers, context)
