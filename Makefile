# prodrank: `make run` runs the default pipeline, `make test` runs every test tier.
# Both create and fill .venv on first use; later calls reuse it.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GX_ANALYTICS_ENABLED=false DVC_NO_ANALYTICS=1 \
       PREFECT_SERVER_ANALYTICS_ENABLED=false BENTOML_DO_NOT_TRACK=true \
       PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW=ignore TOKENIZERS_PARALLELISM=false
export BENTOML_HOME ?= $(CURDIR)/.bentoml

.PHONY: venv run test test-fast lint bench clean-venv

venv: $(STAMP)
$(STAMP): requirements.txt requirements.lock.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first: pip takes the CPU wheel on disk instead of resolving a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt -c requirements.lock.txt
	$(BIN)/pip install -q --no-deps -e .
	@touch $(STAMP)

run: venv
	$(BIN)/dvc repro

test: venv
	$(BIN)/pytest tests

test-fast: venv
	$(BIN)/pytest tests -m "not slow"

lint: venv
	$(BIN)/ruff check src tests flows benchmarks

bench: venv
	$(BIN)/python benchmarks/bench_generate.py

clean-venv:
	rm -rf $(VENV)
