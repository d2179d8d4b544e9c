"""Benchmarks against real servers: `python -m bench.search` (what `make bench` runs)."""
