# Two commands matter: `make run` and `make test` (README). Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
PORT ?= 8000

.PHONY: run test lint bench drill setup setup-dev clean browser promtool receivers

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $(RUNTIME_STAMP) $@

setup: $(RUNTIME_STAMP)
setup-dev: $(DEV_STAMP)

# The demo receives its own first callback on 127.0.0.1 (README), so loopback is exempted from
# the SSRF guard here, and only here; set these variables yourself to run otherwise.
run: export CALLBACKS_DEMO_ENDPOINTS ?= true
run: export CALLBACKS_ALLOWED_NETWORKS ?= 127.0.0.1/32,::1/128
run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_demo
	PORT=$(PORT) $(PY) manage.py run_all

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo

# The browser tests drive Debian's Chromium (never a downloaded browser); install it when missing.
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  echo "Installing Debian's chromium for the browser tests (tests/browser)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

# The alert rules (deploy/prometheus) are checked with promtool, from Debian's prometheus package.
PROMTOOL := /usr/bin/promtool
promtool:
	@test -x $(PROMTOOL) || { \
	  echo "Installing Debian's prometheus for promtool (tests/deploy)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends prometheus; }

# docs/receivers.md's Node and Go snippets run in tests/docs: Debian's nodejs and golang-go.
receivers:
	@{ command -v node >/dev/null && command -v go >/dev/null; } || { \
	  echo "Installing Debian's nodejs and golang-go for the receiver snippets (tests/docs)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends nodejs golang-go; }

# pytest-xdist workers, each running a file at a time (a file's tests share its receivers, Redis database
# and module fixtures). The end-to-end and browser tests mostly wait on the processes they start, so two
# workers on two cores nearly halve the run; a third is faster still but leaves the end-to-end tests
# that measure time (a rate limit's pacing) too little CPU. PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2

test: setup-dev lint browser promtool receivers
	$(PY) manage.py check --fail-level ERROR
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: setup-dev
	$(PY) -m bench $(BENCH_ARGS)

# Restarts this machine's PostgreSQL and Redis during delivery runs (bench/drill.py).
drill: setup-dev
	$(PY) -m bench.drill $(DRILL_ARGS)

clean:
	rm -rf var/test
