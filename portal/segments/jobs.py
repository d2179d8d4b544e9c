"""Segment jobs: on demand with progress, debounced after order events, and nightly."""

from datetime import timedelta

import sqlalchemy as sa
from rq import get_current_job

from portal.db import current_organization_id
from portal.extensions import db
from portal.segments.services import segments_recompute
from portal.tasks import enqueue_scoped, redis_connection

DEBOUNCE_SECONDS = 60
DEBOUNCE_KEY = "portal:segments:debounce:{}"
# A full recompute of 1M customers takes tens of seconds on 2 shared cores
# (docs/benchmarks-worker.md); leave ample room.
RECOMPUTE_TIMEOUT = 1800


def _progress(percent: int, stage: str) -> None:
    job = get_current_job()
    if job is not None:
        job.meta.update(progress=percent, stage=stage)
        job.save_meta()


def segments_recompute_job(full: bool = False) -> dict:
    """Recompute the organization's segments, reporting progress through the job's meta."""
    _progress(10, "Calculando RFM")
    result = segments_recompute(full=full)
    _progress(90, "Guardando")
    db.session.commit()
    _progress(100, "Listo")
    return {"considered": result.considered, "written": result.written}


def _enqueue_recompute(organization_id, delay: timedelta | None = None, *, full: bool = False):
    return enqueue_scoped(
        "portal.segments.jobs:segments_recompute_job",
        organization_id=organization_id,
        delay=delay,
        timeout=RECOMPUTE_TIMEOUT,
        full=full,
    )


def segments_recompute_start():
    """Queue a recompute for the current organization now (the segments page button)."""
    return _enqueue_recompute(current_organization_id())


def segments_recompute_soon() -> None:
    """After order events: one recompute per organization per minute, however many events."""
    organization_id = current_organization_id()
    if redis_connection().set(
        DEBOUNCE_KEY.format(organization_id), 1, nx=True, ex=DEBOUNCE_SECONDS
    ):
        _enqueue_recompute(organization_id, delay=timedelta(seconds=DEBOUNCE_SECONDS))


def segments_nightly() -> int:
    """Scheduled nightly (no organization): a full recompute for every organization.

    Full: it considers every customer (still writing only changed rows), so anything written
    outside the incremental path is repaired within a day.
    """
    organizations = list(db.session.scalars(sa.text("SELECT organization_ids()")))
    db.session.rollback()
    for organization_id in organizations:
        _enqueue_recompute(organization_id, full=True)
    return len(organizations)
