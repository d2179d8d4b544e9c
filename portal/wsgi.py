"""WSGI entry point for gunicorn: `gunicorn portal.wsgi:app`."""

import gc

from portal import create_app

app = create_app()

# What the app built at start (routes, templates, metadata) lives as long as the process: freeze
# it out of the cycle collector's way, and run the youngest generation less often. A 1,000-line
# statement allocated enough for ~8 collections per request, and the occasional full collection
# was its p95 (docs/benchmarks.md, "GC"). Reference counting still frees everything acyclic.
gc.freeze()
gc.set_threshold(20_000, 20, 20)
