"""htmx helpers: one URL serves the full page or, to htmx, just its fragment."""

from flask import render_template, request


def is_htmx() -> bool:
    """True for requests made by htmx (HX-Request header), except history restores."""
    return request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )


def render(page_template: str, partial_template: str, /, **context) -> str:
    """Render the partial for htmx requests and the whole page otherwise."""
    return render_template(partial_template if is_htmx() else page_template, **context)
