# Everything bootstraps from a bare Python >= 3.11: a private uv in .tools, then the locked env in .venv.
UV_VERSION ?= 0.13.9
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(shell $(PYTHON) -c 'import sys; print(sys.executable)')

.PHONY: demo test test-slow lint check bench clean install dagster

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --quiet
	touch $@

install: .venv/.synced

## The README's first command: twin + accelerated history + syncs + statistics + report.
demo: .venv/.synced
	$(UV) run --locked --quiet jobs-pipeline demo

## The README's second command: lint, types, then the whole test suite on 2 workers.
test: .venv/.synced lint
	$(UV) run --locked --quiet pytest -n 2 -m "not slow"

test-slow: .venv/.synced
	$(UV) run --locked --quiet pytest -m slow

lint: .venv/.synced
	$(UV) run --locked --quiet ruff check jobs_pipeline jobs_pipeline_tests benchmarks
	$(UV) run --locked --quiet ruff format --check jobs_pipeline jobs_pipeline_tests benchmarks
	$(UV) run --locked --quiet mypy

## The one way to start Dagster: UI on the demo archive (or JOBS_PIPELINE_DB), with the project's
## instance settings (dagster_home/). Ctrl-C or SIGTERM stops it and all its processes within ~10 s.
dagster: .venv/.synced
	DAGSTER_HOME=$(CURDIR)/dagster_home JOBS_PIPELINE_DB=$${JOBS_PIPELINE_DB:-$(CURDIR)/demo-output/archive.duckdb} \
		exec .venv/bin/python -m jobs_pipeline.devserver -w workspace.yaml $(DAGSTER_ARGS)

bench: .venv/.synced
	$(UV) run --locked --quiet python -m benchmarks.capture
	$(UV) run --locked --quiet python -m benchmarks.ingest

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache demo-output
