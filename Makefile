# One-line targets (DESIGN.md §1). Each creates .venv itself on first use.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

.PHONY: install run test check bench
install: $(STAMP)

run: $(STAMP)
	scripts/run-local.sh

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

check: $(STAMP)
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) scripts/check_shape.py
	$(VENV)/bin/cog --check docs/cli.md

bench: $(STAMP)
	$(PY) bench/core_ops.py
