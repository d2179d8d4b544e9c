# The few verbs a newcomer needs. `make run` and `make test` install whatever is missing first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 5000

.PHONY: run test install assets chromium bench-tools lint format bench bench-pages bench-worker bench-api schema-doc clean

run: install
	@bash bin/ensure-debian-packages $(PDF_PACKAGES) || echo "PDF documents stay unavailable until Pango is installed." >&2
	$(PY) -m portal.embedded serve --port $(PORT)

# pytest exits 5 when it collected nothing: that is a broken suite, never a pass.
test: install chromium
	@$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$status

install: $(VENV)/.installed assets

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

assets: static/vendor/.installed

static/vendor/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	mkdir -p static/vendor/htmx static/vendor/pico
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx/
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico/
	touch $@

# Browser tests drive Debian's Chromium and PDFs need Pango; installed when missing (root, or
# passwordless sudo).
PDF_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core
chromium:
	@bash bin/ensure-debian-packages chromium $(PDF_PACKAGES)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks (not tests): docs/benchmarks.md and docs/benchmarks-worker.md record their figures.
# They drive the servers with wrk (Debian's package), installed when missing like Chromium.
bench-tools:
	@bash bin/ensure-debian-packages wrk

bench: install bench-tools
	$(PY) -m bench.search $(BENCH_ARGS)

bench-pages: install bench-tools
	$(PY) -m bench.pages $(BENCH_ARGS)

bench-worker: install bench-tools
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m bench.events $(BENCH_ARGS)
	$(PY) -m bench.segments $(BENCH_ARGS)

bench-api: install bench-tools
	$(PY) -m bench.api $(BENCH_ARGS)

# docs/schema.md from a database migrated from empty (a test fails when it is stale).
schema-doc: install
	$(PY) -m portal.schema_doc

clean:
	rm -rf .data .pytest_cache
