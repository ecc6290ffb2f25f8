# ecomlab developer commands. `make help` lists them.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# A plain `torch` requirement pulls a multi-GB CUDA build; the CPU wheel is installed first.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.ecomlab-installed

.PHONY: help setup train test test-full lint clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv with torch (CPU) and ecomlab[dev]; no-op when already set up

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[dev]"
	touch $(STAMP)

train: setup ## run the quickstart experiment on built-in MovieLens data
	$(VENV)/bin/ecomlab-train experiment=quickstart

test: setup ## fast test suite (no slow tests)
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider

test-full: setup ## every test, slow ones included
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup ## ruff
	$(VENV)/bin/ruff check src tests scripts

clean: ## remove logs and caches (keeps .venv)
	rm -rf logs .pytest_cache
