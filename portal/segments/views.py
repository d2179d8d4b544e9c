"""Segments page: distribution chart, drill-down, on-demand recompute with a live progress bar."""

from flask import abort, render_template
from rq.exceptions import NoSuchJobError
from rq.job import Job

from portal.auth.permissions import permission_required
from portal.db import current_organization_id
from portal.segments import bp
from portal.segments.jobs import segments_recompute_start
from portal.segments.services import segment_distribution, segments_last_computed
from portal.tasks import redis_connection


def _chart_context() -> dict:
    distribution = segment_distribution()
    peak = max([row["customers"] for row in distribution] + [1])
    return {"distribution": distribution, "peak": peak, "computed_at": segments_last_computed()}


@bp.get("/")
@permission_required("segments.view")
def index():
    """The distribution of customers and value per segment."""
    return render_template("segments/index.html", **_chart_context())


@bp.get("/chart")
@permission_required("segments.view")
def chart():
    """The chart fragment (refreshed when a recompute finishes)."""
    return render_template("segments/_chart.html", **_chart_context())


@bp.post("/recompute")
@permission_required("segments.recompute")
def recompute():
    """Start a recompute now; the page polls its progress."""
    job = segments_recompute_start()
    return render_template("segments/_progress.html", job_id=job.id, progress=0, stage="En cola")


@bp.get("/recompute/<job_id>")
@permission_required("segments.recompute")
def progress(job_id: str):
    """How far a recompute of this organization has got."""
    try:
        job = Job.fetch(job_id, connection=redis_connection())
    except (NoSuchJobError, ValueError):
        abort(404)
    if job.args[1:2] != (str(current_organization_id()),):
        abort(404)  # another organization's job
    status = job.get_status()
    if status == "failed":
        return render_template("segments/_progress.html", job_id=None, progress=0, failed=True)
    finished = status == "finished"
    context = {
        "job_id": None if finished else job_id,
        "progress": 100 if finished else job.meta.get("progress", 0),
        "stage": "Listo" if finished else job.meta.get("stage", "En cola"),
    }
    headers = {"HX-Trigger": "segments-updated"} if finished else {}
    return render_template("segments/_progress.html", **context), 200, headers
