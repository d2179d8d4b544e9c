"""htmx answers: one URL serves the full page or, to htmx, just its fragment.

Every view answers through these helpers: `render` for "page or partial" (a refused form is the
same call with status=INVALID, so the form partial shows its errors), `done` and `refused` for
the outcome of an action (htmx gets the partial with the message and what `context()` returns,
read only then; a browser without JavaScript is redirected with the message flashed). With
toast=True htmx also gets the message as a toast (HX-Trigger), announced on whatever page it is.
`form_page` is `render` for a full-page form: refused without htmx, the page with its errors is
kept for one GET of the form's page (its own URL, or `page_url` when the form lives on another
page), served by `kept_page` before any view (Post/Redirect/Get), so Back never re-posts.
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


def form_page(
    page_template: str,
    partial_template: str | None = None,
    /,
    *,
    status=200,
    page_url: str | None = None,
    **context,
):
    """`render` for a full-page form, with Post/Redirect/Get when a browser's POST is refused.

    The refused page (values and errors) is kept in Redis and the browser is sent (303) to
    `page_url` (the form's own URL unless the form lives on another page), whose next GET shows
    it once (`kept_page`); htmx still gets the partial with a 422.
    """
    body, status, headers = render(page_template, partial_template, status=status, **context)
    if status < 400 or request.method != "POST" or is_htmx():
        return body, status, headers
    target = page_url or request.full_path.rstrip("?")
    key = f"kept-form:{secrets.token_urlsafe(16)}"
    redis_connection().set(key, body, ex=KEPT_SECONDS)
    session[_KEPT] = {"path": target, "key": key, "status": status}
    return redirect(target, 303)


def kept_page():
    """Before each request: a browser's GET of the page a form was just refused on shows the
    kept page (values and errors) once, whatever view serves that URL."""
    kept = session.get(_KEPT)
    if not kept or request.method != "GET" or is_htmx():
        return None
    if kept["path"] != request.full_path.rstrip("?"):
        return None
    session.pop(_KEPT)
    body = redis_connection().getdel(kept["key"])
    return (body.decode(), kept["status"]) if body is not None else None


def init_app(app) -> None:
    """Serve kept pages (after the session's user and scope are set)."""
    app.before_request(kept_page)


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
