"""RQ worker: builds the app once and runs every job inside its organization's scope."""

import logging

from rq import SimpleWorker

from portal import create_app
from portal.tasks import queue


def main() -> None:
    """Run the worker until stopped (SIGINT/SIGTERM finish the current job first)."""
    app = create_app()
    with app.app_context():
        portal_queue = queue()
        logging.getLogger(__name__).info("worker starting", extra={"queue": portal_queue.name})
        SimpleWorker([portal_queue], connection=portal_queue.connection).work(
            with_scheduler=True, logging_level=app.config["LOG_LEVEL"]
        )


if __name__ == "__main__":
    main()
