"""RQ worker: builds the app once and runs every job inside its organization's scope.

`python worker.py` processes jobs; `python worker.py --scheduler` runs the cron schedule
(inbox sweeper, nightly segments, daily overdue pass) that enqueues jobs for the workers.
"""

import argparse
import logging

from rq import SimpleWorker
from rq.cron import CronScheduler

from portal import create_app
from portal.credit.jobs import overdue_sweep
from portal.events.jobs import inbox_sweep
from portal.mail.jobs import outbox_sweep
from portal.segments.jobs import segments_nightly
from portal.tasks import cron_run, queue
from portal.webhooks.jobs import webhooks_sweep

# Cron times are UTC: 07:00 is 02:00 in Panama, 11:00 is 06:00 (before branches open).
SCHEDULE = [
    (inbox_sweep, "* * * * *"),
    (webhooks_sweep, "* * * * *"),
    (outbox_sweep, "* * * * *"),
    (segments_nightly, "0 7 * * *"),
    (overdue_sweep, "0 11 * * *"),
]


def schedule_register(scheduler: CronScheduler, queue_name: str) -> None:
    """Register the cron schedule; safe to run twice, cron_run lets one job per tick through."""
    for function, cron in SCHEDULE:
        path = f"{function.__module__}:{function.__name__}"
        scheduler.register(cron_run, queue_name, args=(path,), cron=cron, name=function.__name__)


def main() -> None:
    """Run the worker (or the scheduler) until stopped; SIGTERM finishes the current job first."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--scheduler", action="store_true", help="run the cron schedule instead")
    args = parser.parse_args()
    app = create_app()
    with app.app_context():
        portal_queue = queue()
        log = logging.getLogger("portal.worker")
        if args.scheduler:
            scheduler = CronScheduler(
                connection=portal_queue.connection, logging_level=app.config["LOG_LEVEL"]
            )
            schedule_register(scheduler, portal_queue.name)
            log.info("scheduler starting", extra={"jobs": [f.__name__ for f, _ in SCHEDULE]})
            scheduler.start()
            return
        log.info("worker starting", extra={"queue": portal_queue.name})
        SimpleWorker([portal_queue], connection=portal_queue.connection).work(
            with_scheduler=True, logging_level=app.config["LOG_LEVEL"]
        )


if __name__ == "__main__":
    main()
