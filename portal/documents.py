"""PDF documents: WeasyPrint renders the same Jinja partial that the document's page shows.

The PDF layout (`templates/documents/pdf.html`) inlines its own print stylesheet
(`static/css/documents.css`), so rendering fetches nothing: WeasyPrint is allowed no URL at all.
WeasyPrint (and Pango under it) is imported on first use; `make run` and the tests install Pango.
"""

from pathlib import Path

from flask import Response, current_app, render_template, request

from portal.htmx import render
from portal.settings.services import organization_letterhead


def _letterhead() -> dict:
    name, address = organization_letterhead()
    return {"organization_name": name, "organization_address": address}


def pdf_render(template: str, *, title: str, **context) -> bytes:
    """The partial `template` under the current organization's letterhead as PDF bytes; needs
    an application context only (a download, or the mail worker attaching it)."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    css = (Path(current_app.static_folder) / "css" / "documents.css").read_text(encoding="utf-8")
    html = render_template(
        "documents/pdf.html",
        body=template,
        title=title,
        document_css=css,
        **context,
        **_letterhead(),
    )
    return HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=())).write_pdf()


def document(page: str, partial: str, *, filename: str, title: str, **context):
    """A printed document of the current organization under its letterhead: its page, or with
    `?format=pdf` its partial as a PDF attachment."""
    if request.args.get("format") == "pdf":
        response = Response(pdf_render(partial, title=title, **context), mimetype="application/pdf")
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    return render(page, **context, **_letterhead())
