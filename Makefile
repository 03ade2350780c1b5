# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_ENV := ALLIANCE_DEMO=1 ALLIANCE_LOG_FORMAT=console

# The dependencies are installed from lock files with hashes (pip --require-hashes): every
# package is the version and the file that was locked. After changing dependencies in
# pyproject.toml, run `make lock` (needs PyPI) and commit both lock files.
LOCK = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--quiet

.PHONY: run test test-fast lint audit lock lock-upgrade bench chaos chaos-cluster scaling clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml requirements-test.lock $(VENV)/.installed
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.lock
	touch $@

# Regenerate the lock files from pyproject.toml, keeping every pin that still fits (add a
# dependency: edit pyproject.toml, then this). lock-upgrade moves every pin to the newest.
lock: $(VENV)/.installed-test
	$(LOCK) $(UPGRADE) -o requirements.lock
	$(LOCK) $(UPGRADE) --extra test -c requirements.lock -o requirements-test.lock

lock-upgrade:
	$(MAKE) lock UPGRADE=--upgrade

# Known vulnerabilities in the locked packages (pip-audit; tests/audit_dependencies.py says
# what happens when the vulnerability data cannot be reached).
audit: $(VENV)/.installed-test
	$(BIN)/python tests/audit_dependencies.py requirements-test.lock

run: $(VENV)/.installed
	$(DEMO_ENV) $(BIN)/alliance db upgrade
	$(DEMO_ENV) $(BIN)/alliance practice apply deploy/demo-practice.json
	@cat deploy/demo-next-steps.txt
	$(DEMO_ENV) $(BIN)/alliance serve --host 127.0.0.1 --port 8000

test: $(VENV)/.installed-test lint audit
	tests/setup-browser.sh
	tests/setup-canvas-sdk.sh
	$(BIN)/pytest

# ruff (style and likely bugs) and import-linter (the layering: pyproject.toml, docs/architecture.md).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Needs PostgreSQL and RabbitMQ (as for `make test`) and wrk (apt-get install -y wrk).
# Figures go to stdout and var/bench/*/result.json; docs/performance.md says how to read them.
bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/cohort.py
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install -y wrk" >&2; exit 1; }
	$(BIN)/python benchmarks/intake_vs_flask.py
	$(BIN)/python benchmarks/cds_vs_flask.py
	$(BIN)/python benchmarks/end_to_end.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/trend_view.py
	$(BIN)/python benchmarks/alert_document.py
	$(BIN)/python benchmarks/alert_governance.py
	$(BIN)/python benchmarks/data_at_rest.py

# 300 sessions through killed workers, a RabbitMQ restart, a failing EHR and a missing SMS
# provider; exits non-zero if anything was lost, doubled or logged. See docs/reliability.md.
chaos: $(VENV)/.installed-test
	$(BIN)/python benchmarks/chaos.py

# The same 300 sessions on a three-node RabbitMQ cluster of its own (quorum queues, node URLs
# as the broker URL): the node leading the queues is killed with SIGKILL and started again, a
# second node is restarted gracefully, a worker is killed, the EHR fails 30 %. Leaves the
# machine's RabbitMQ alone; about 5 minutes. See docs/reliability.md.
chaos-cluster: $(VENV)/.installed-test
	$(BIN)/python benchmarks/chaos.py --cluster

# The curve of consumers (1-32) x relay interval -> sessions/s, job p99, worker RSS, PostgreSQL
# connections, 300 sessions a point on PostgreSQL + RabbitMQ; 15-25 minutes on a quiet
# 2-core machine. Run it on a quiet machine: docs/scaling.md takes its table from it.
scaling: $(VENV)/.installed-test
	$(BIN)/python benchmarks/scaling.py

clean:
	rm -rf $(VENV) .venv-canvas var .pytest_cache
