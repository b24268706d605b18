# Thin targets; see README.md. Everything runs from the checkout's own virtualenv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST := $(PY) -m pytest -p no:cacheprovider

.PHONY: run test test-sqlite test-postgres test-browser lint fmt demo-reset bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

# The whole suite: SQLite + in-process broker, then PostgreSQL + Redis, then Chromium.
test: test-sqlite test-postgres test-browser

test-sqlite: $(STAMP)
	@echo "=== suite on SQLite + in-process broker ==="
	FB_TEST_DB=sqlite $(PYTEST) -m "not browser and not multiprocess"

test-postgres: $(STAMP)
	@echo "=== suite on PostgreSQL + Redis (with multi-process delivery) ==="
	FB_TEST_DB=postgres $(PYTEST) -m "not browser"

test-browser: $(STAMP)
	@echo "=== browser scenarios in headless Chromium ==="
	$(PYTEST) -m browser tests/browser

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy main.py settings.py routes tables live

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo-reset: $(STAMP)
	$(PY) demo.py --reset

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
