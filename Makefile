# prodrank: `make run` runs the default pipeline, `make test` runs every test tier.
# Both create and fill .venv on first use; later calls reuse it.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GX_ANALYTICS_ENABLED=false DVC_NO_ANALYTICS=1 \
       PREFECT_SERVER_ANALYTICS_ENABLED=false BENTOML_DO_NOT_TRACK=true \
       PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW=ignore TOKENIZERS_PARALLELISM=false \
       OMP_WAIT_POLICY=PASSIVE
export BENTOML_HOME ?= $(CURDIR)/.bentoml
# dvc.yaml stages call `prodrank`, so the venv must be first on PATH
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv run test test-fast lint bench clean-venv

venv: $(STAMP)
$(STAMP): requirements.txt requirements.lock.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first: pip takes the CPU wheel on disk instead of resolving a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt -c requirements.lock.txt
	$(BIN)/pip install -q --no-deps -e .
	@touch $(STAMP)

# a local Prefect server is started in the background (if none answers) so every stage shows as a
# flow run in its UI; without one the stages run as plain commands (docs/orchestration.md)
run: venv
	@PREFECT_HOME=$(PREFECT_DIR) $(BIN)/python -m prodrank.orchestration.server ensure --wait 0 || true
	PREFECT_HOME=$(PREFECT_DIR) $(BIN)/dvc repro

test: venv
	$(BIN)/pytest tests

test-fast: venv
	$(BIN)/pytest tests -m "not slow"

lint: venv
	$(BIN)/ruff check src tests tools flows benchmarks

bench: venv
	$(BIN)/python benchmarks/bench_generate.py

clean-venv:
	rm -rf $(VENV)

# --- your own data (README "Your own data in two commands") --------------------------------
.PHONY: init-profile
NAME ?=
JUDGMENTS ?=
INTERACTIONS ?=
CATALOG ?=

init-profile: venv  ## NAME=mine JUDGMENTS=file.csv (or INTERACTIONS=log.csv CATALOG=catalog.csv): write and select a profile; then make run
	$(BIN)/prodrank init-profile $(NAME) $(if $(JUDGMENTS),--judgments $(JUDGMENTS)) \
		$(if $(INTERACTIONS),--interactions $(INTERACTIONS)) $(if $(CATALOG),--catalog $(CATALOG))

# --- serving (README "Serving") ----------------------------------------------------------
.PHONY: serve bench-serving bento
BENCH_SERVING_ARGS ?=

serve: venv  ## serve the champion (or PRODRANK_MODEL_TAG) on serving.host:port; Ctrl-C or SIGTERM stops it
	$(BIN)/prodrank serve

bench-serving: venv  ## HTTP latency/throughput vs the naive baseline; BENCH_SERVING_ARGS="--arch minilm" for the default model
	$(BIN)/python benchmarks/bench_serving.py $(BENCH_SERVING_ARGS)

bento: venv  ## build a bento offline (bentofile.yaml) packing the champion into $(BENTOML_HOME)/bentos
	$(BIN)/bentoml build

# --- orchestration (docs/orchestration.md) -------------------------------------------------
.PHONY: prefect-server prefect-stop schedule schedule-stop retrain rollback
PREFECT_DIR ?= $(CURDIR)/.prefect

prefect-server: venv  ## start (or find) the local Prefect server on 127.0.0.1 and print the UI address
	@PREFECT_HOME=$(PREFECT_DIR) $(BIN)/python -m prodrank.orchestration.server ensure

prefect-stop: venv  ## stop the Prefect server this project started
	@PREFECT_HOME=$(PREFECT_DIR) $(BIN)/python -m prodrank.orchestration.server stop

schedule: venv  ## Prefect server + the cron retrain deployment (flow.serve); Ctrl-C or `make schedule-stop` stops both
	PREFECT_HOME=$(PREFECT_DIR) $(BIN)/python -m prodrank.orchestration.schedule

schedule-stop: venv
	@PREFECT_HOME=$(PREFECT_DIR) $(BIN)/python -m prodrank.orchestration.schedule stop

retrain: venv  ## one retrain run now: newest drop in data/incoming (or serving logs) -> promote only if better
	PREFECT_HOME=$(PREFECT_DIR) $(BIN)/prodrank retrain

rollback: venv  ## the previous champion becomes champion again
	$(BIN)/prodrank rollback

# --- monitoring (docs/monitoring.md) ---------------------------------------------------------
.PHONY: monitor demo-drift
MONITOR_ARGS ?=
DEMO_DRIFT_ARGS ?=

monitor: venv  ## Evidently drift report of the serving log vs the reference -> reports/drift/
	PREFECT_HOME=$(PREFECT_DIR) $(BIN)/prodrank monitor $(MONITOR_ARGS)

demo-drift: venv  ## serve -> control traffic -> monitor (no drift) -> drifted traffic -> monitor (drift) -> retrain, in a fresh tiny workspace
	$(BIN)/python -m tools.monitoring.demo_drift $(DEMO_DRIFT_ARGS)

# --- reliability (docs/reliability.md) --------------------------------------------------------
.PHONY: reliability
RELIABILITY_ARGS ?=

reliability: venv  ## fuzzing, 5-min load, injected faults, security checks -> docs/reliability.md (about 20 min)
	$(BIN)/python -m tools.reliability.suite $(RELIABILITY_ARGS)
