# Fresh machine: `make run` (app with demo data on SQLite) or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve test screenshots lint migrations-check audit clean

install: $(STAMP)

$(STAMP): pyproject.toml package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@# The API's GraphiQL page is served from these packages; without npm it simply stays off.
	if command -v npm >/dev/null; then npm ci --ignore-scripts --no-audit --no-fund --silent; \
	else echo "npm not found: the GraphiQL page of the API stays off."; fi
	touch $(STAMP)

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "Clinic billing is running: open http://$(HOST):$(PORT)/accounts/login/"
	@echo "Demo logins are listed above (clerk, clerk2, approver, austin_clerk, admin)."
	@echo ""
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The production-shaped stack on this machine (Procfile, run by honcho): gunicorn, a Celery
# worker and Celery beat, with production settings, against DATABASE_URL (PostgreSQL) and
# CELERY_BROKER_URL (Redis or RabbitMQ). Plain HTTP on 127.0.0.1, so no redirect to HTTPS.
serve: install
	@test -n "$$DATABASE_URL" || { echo "make serve needs DATABASE_URL, e.g." \
	  "postgres://postgres@127.0.0.1:5432/clinic_billing" >&2; exit 2; }
	@test -n "$$CELERY_BROKER_URL" || { echo "make serve needs CELERY_BROKER_URL, e.g." \
	  "redis://127.0.0.1:6379/0" >&2; exit 2; }
	export DJANGO_SETTINGS_MODULE=config.settings.production \
	  DJANGO_SECURE_SSL_REDIRECT=$${DJANGO_SECURE_SSL_REDIRECT:-false} \
	  DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')} \
	  HOST=$(HOST) PORT=$(PORT) PATH="$(CURDIR)/$(BIN):$$PATH" && \
	$(BIN)/python manage.py migrate --noinput && \
	$(BIN)/python manage.py collectstatic --noinput -v0 && \
	echo "Clinic billing (gunicorn + Celery worker + beat): http://$(HOST):$(PORT)/ — Ctrl+C stops all three." && \
	$(BIN)/honcho start

# In parallel, one worker per core (each with its own test database).
test: install
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

# The README's screenshots (docs/screenshots/*.png), taken by the browser tests in Chromium.
screenshots: install
	README_SCREENSHOTS=1 $(BIN)/python -m pytest -p no:cacheprovider -q tests/browser

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo

migrations-check: install
	$(BIN)/python manage.py makemigrations --check --dry-run

# Security checks: bandit on the application's code (no medium or high finding), and pip-audit on
# the installed dependencies where its vulnerability data (PyPI's JSON API, OSV) can be reached.
# It is probed first with a Django release that has published advisories: a tool that cannot see
# them reports every package "could not be audited" and exits 0, which proves nothing.
AUDIT_PROBE := django==3.2.0
audit: install
	$(BIN)/bandit -q -r api approvals audit billing config desk refunds --severity-level medium
	@probe=$$(mktemp); echo "$(AUDIT_PROBE)" > $$probe; \
	if $(BIN)/pip-audit --no-deps --disable-pip -r $$probe -f json 2>/dev/null \
	   | $(BIN)/python -c 'import json,sys; d=json.load(sys.stdin)["dependencies"]; sys.exit(0 if any(x.get("vulns") for x in d) else 1)'; \
	then rm -f $$probe; $(BIN)/pip-audit --strict --skip-editable; \
	else rm -f $$probe; echo "pip-audit: SKIPPED (not passed): its vulnerability data cannot be reached from this machine, so $(AUDIT_PROBE), which has published advisories, came back unaudited."; fi

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .hypothesis staticfiles

# Benchmark on PostgreSQL: loads <db>_bench (BENCH_INVOICES, default 1,000,000) and
# <db>_bench_small, serves with gunicorn and production settings, prints a table and JSON.
.PHONY: bench
bench: install
	@case "$$DATABASE_URL" in postgres://*|postgresql://*|pgsql://*) ;; \
	*) echo "make bench needs DATABASE_URL pointing at PostgreSQL, e.g." >&2; \
	   echo "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_billing make bench" >&2; \
	   exit 2;; esac
	$(BIN)/python -m bench.run
