# One set of targets for people and CI. Every target sets up what it needs from scratch.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-oldest lint bench bench-loop ddtrace-venv redis clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)  ## the main job: a model served to simulated traffic, telemetry to ./telemetry, a summary
	$(PY) examples/quickstart.py

test: $(STAMP) redis  ## the whole test suite (starts its own OTLP receivers and redis-servers)
	$(PY) -m pytest

# The oldest versions modeltel supports. Left to the newest run: tests of extras whose own
# minimums are newer (prometheus exporter, duckdb, web frameworks, model libraries) and two tests of the raw SDK's
# behaviour that changed after 1.39 (list-valued metric attributes, HTTP exporter timeouts).
OLDEST := 'opentelemetry-api==1.39.*' 'opentelemetry-sdk==1.39.*' 'opentelemetry-exporter-otlp==1.39.*' \
	'opentelemetry-proto==1.39.*' 'pydantic==2.7.*'
OLDEST_SKIP := test_(prometheus|dashboards|loop_|serving_|otlp_json|otlp_receiver|models)

test-oldest: redis  ## the core suite against the oldest supported OpenTelemetry and pydantic
	$(PYTHON) -m venv .venv-oldest
	.venv-oldest/bin/python -m pip install -q --upgrade pip
	.venv-oldest/bin/python -m pip install -q -e . $(OLDEST) pytest hypothesis grpcio redis pandas httpx scikit-learn
	.venv-oldest/bin/python -m pytest -q $$(ls tests/test_*.py | grep -vE '$(OLDEST_SKIP)')

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/mypy

# The benchmark's extra (the peer SDK it compares with, the Redis client) on top of the test
# install, behind its own stamp: `make test` never installs it.
BENCH_STAMP := $(VENV)/.bench-installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]'
	rm -f $(VENV)/.bench-installed-* && touch $@

# ddtrace, the peer of the benchmark matrix, in a virtualenv of its own: it patches what it can
# reach, so it never shares a process or an install with modeltel.
DDTRACE_VENV := .venv-ddtrace
DDTRACE_STAMP := $(DDTRACE_VENV)/.installed

$(DDTRACE_STAMP):
	$(PYTHON) -m venv $(DDTRACE_VENV)
	$(DDTRACE_VENV)/bin/python -m pip install -q --upgrade pip
	$(DDTRACE_VENV)/bin/python -m pip install -q 'ddtrace>=4,<5'
	touch $@

ddtrace-venv: $(DDTRACE_STAMP)  ## ddtrace in .venv-ddtrace, for the benchmark matrix's peer row

bench: $(BENCH_STAMP) $(DDTRACE_STAMP) redis  ## overhead tables, the providers x sampling matrix, FastAPI latency
	$(PY) benchmarks/run.py
	$(PY) benchmarks/matrix.py --ddtrace-python $(DDTRACE_VENV)/bin/python
	$(PY) benchmarks/serving.py

bench-loop: $(STAMP)  ## modeltel evaluate at 10M and 100M predictions, DuckDB and Spark: wall time and peak memory (~80 min, ~25 GB of disk)
	$(PY) benchmarks/loop.py

redis:  # what the tests start: redis-server (limits), prometheus + promtool (alert rules), chromium (the report in a browser), java (a local Spark); root installs them
	@command -v redis-server >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 && command -v java >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server prometheus chromium openjdk-17-jre-headless >/dev/null; } || echo "redis-server/prometheus/chromium/java not installed: those tests will be skipped"

clean:
	rm -rf $(VENV) .venv-oldest $(DDTRACE_VENV) .pytest_cache .mypy_cache .ruff_cache telemetry
