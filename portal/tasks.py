"""Redis and RQ: jobs take ids and run inside their organization's scope."""

import importlib
import logging
import uuid
from datetime import UTC, datetime, timedelta

from flask import current_app
from redis import Redis
from rq import Queue, Retry, get_current_job

from portal.db import organization_scope
from portal.extensions import db

log = logging.getLogger(__name__)
CRON_LOCK_KEY = "portal:cron:{}:{:%Y%m%dT%H%M}"


def redis_connection() -> Redis:
    """The app's Redis connection (one pool per app)."""
    connection = current_app.extensions.get("portal_redis")
    if connection is None:
        connection = Redis.from_url(current_app.config["REDIS_URL"])
        current_app.extensions["portal_redis"] = connection
    return connection


def queue() -> Queue:
    """The portal's RQ queue."""
    return Queue(current_app.config["RQ_QUEUE"], connection=redis_connection())


def enqueue_scoped(
    function_path: str,
    *,
    organization_id: uuid.UUID,
    delay: timedelta | None = None,
    timeout: int = 180,
    **kwargs,
):
    """Enqueue `module:function` to run inside one organization's scope (now or after a delay).

    Transient failures (a lost connection, a deadlock) are retried with backoff; `timeout` is
    how long one run may take before RQ stops it.
    """
    arguments = (run_scoped, function_path, str(organization_id), kwargs)
    options = {
        "description": function_path,
        "retry": Retry(max=3, interval=[5, 30, 120]),
        "job_timeout": timeout,
    }
    if delay is not None:
        return queue().enqueue_in(delay, *arguments, **options)
    return queue().enqueue(*arguments, **options)


def run_scoped(function_path: str, organization_id: str, kwargs: dict):
    """Worker side: run the job inside its organization's scope and commit its work."""
    module_name, function_name = function_path.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    with organization_scope(uuid.UUID(organization_id)):
        try:
            result = function(**kwargs)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        finally:
            db.session.remove()
    return result


def cron_run(function_path: str):
    """Worker side of a cron job: run it once per cron tick however many schedulers enqueued it.

    Every scheduler enqueues at the same tick (the minute the cron names), so the first job of
    that minute takes a Redis lock for it and the others return without running.
    """
    job = get_current_job()
    enqueued = job.enqueued_at if job is not None and job.enqueued_at else datetime.now(UTC)
    key = CRON_LOCK_KEY.format(function_path, enqueued.replace(second=0, microsecond=0))
    if not redis_connection().set(key, 1, nx=True, ex=2 * 24 * 3600):
        log.info("cron job already run for this tick", extra={"job": function_path})
        return None
    module_name, function_name = function_path.split(":")
    return getattr(importlib.import_module(module_name), function_name)()
