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

QUICKSTART_DIR ?= logs/quickstart/multiruns/$(shell date +%Y-%m-%d_%H-%M-%S)

train: setup ## quickstart: three models on built-in MovieLens data, then their comparison table
	$(VENV)/bin/ecomlab-train -m experiment=quickstart hydra.sweep.dir=$(QUICKSTART_DIR)
	$(VENV)/bin/ecomlab-compare $(QUICKSTART_DIR) --metrics test/ndcg@10 test/recall@10 fit_seconds \
	    --baseline popularity --out $(QUICKSTART_DIR)/comparison

test: setup ## fast test suite (no slow tests)
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider

test-full: setup ## every test, slow ones included
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup ## ruff
	$(VENV)/bin/ruff check src tests scripts

clean: ## remove logs and caches (keeps .venv)
	rm -rf logs .pytest_cache
