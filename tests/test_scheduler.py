"""The cron schedule is safe to run twice: each scheduled job runs once per cron tick."""

import logging
from datetime import UTC, datetime

from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.registry import FinishedJobRegistry

from portal.tasks import queue
from worker import SCHEDULE, schedule_register

TICK = datetime(2026, 11, 29, 7, 0, 0, 500_000, tzinfo=UTC)


def test_two_schedulers_run_each_cron_job_once_per_tick(app, org_a, org_b):
    with app.app_context():
        portal_queue = queue()
        for _ in range(2):  # two scheduler processes, both due at the same tick
            scheduler = CronScheduler(connection=portal_queue.connection)
            schedule_register(scheduler, portal_queue.name)
            for cron_job in scheduler.get_jobs():
                cron_job.next_enqueue_time = datetime(2000, 1, 1, tzinfo=UTC)
            scheduler.enqueue_jobs()
        cron_jobs = portal_queue.get_jobs()
        assert len(cron_jobs) == 2 * len(SCHEDULE)
        for job in cron_jobs:  # both enqueued within the tick's minute
            job.enqueued_at = TICK
            job.save()
        SimpleWorker([portal_queue], connection=portal_queue.connection).work(
            burst=True, logging_level=logging.WARNING
        )
        finished = FinishedJobRegistry(queue=portal_queue)
        jobs = [portal_queue.fetch_job(job_id) for job_id in finished.get_job_ids()]
        cron_runs = [job for job in jobs if job.func_name == "portal.tasks.cron_run"]
        ran = sorted(job.args[0] for job in cron_runs if job.return_value() is not None)
        recomputes = [job for job in jobs if job.description.endswith("segments_recompute_job")]
    assert len(cron_runs) == 2 * len(SCHEDULE)
    assert ran == sorted(f"{f.__module__}:{f.__name__}" for f, _ in SCHEDULE)
    assert len(recomputes) == 2  # the nightly fan-out ran once: one recompute per organization
