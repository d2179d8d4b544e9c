"""Redis and RQ: jobs take ids and run inside their organization's scope."""

import importlib
import uuid
from datetime import timedelta

from flask import current_app
from redis import Redis
from rq import Queue, Retry

from portal.db import organization_scope
from portal.extensions import db


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
