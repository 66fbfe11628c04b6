# RNN Cell Lab — the two commands of the README, and a few more.
#   make run      create .venv, install what running needs, run the quick sweep and its report
#   make test     create .venv, install with the dev extras, run the test suite (slow tests excluded)
#   make bench    regenerate benchmarks/RESULTS.md (about 16 minutes on 2 cores, + the study-throughput runs)
#   make results  regenerate the results pages from the committed runs exports (no MLflow store
#                 needed): docs/RESULTS.md, the fair study (docs/results/study_fair/, its tuning
#                 from experiments/sweeps/tuned/; "not run yet" where a family has no runs), and
#                 docs/results/first_study/RESULTS.md, the first study (docs/results/study_runs.csv)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# `make run` installs the suite alone; the test and lint targets add the dev extras (pytest, ruff, Ray
# for `rnnlab sweep --workers`, and
# JAX and PyTorch for the backend tests: about 4 GB more).
DEV    := $(VENV)/.installed-dev
# the project's shared data folder, when it exists beside the checkout and nothing else was chosen
ifeq ($(origin RNNLAB_DATA_DIR),undefined)
ifneq ($(wildcard ../shared/datasets),)
export RNNLAB_DATA_DIR := $(abspath ../shared/datasets)
endif
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test test-all lint bench gpu-bench results clean install install-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip setuptools wheel

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	touch $(STAMP)

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP) $(DEV)

install: $(STAMP)

install-dev: $(DEV)

run: $(STAMP)
	$(BIN)/rnnlab sweep experiments/sweeps/quick.yaml
	$(BIN)/rnnlab report --sweep quick

test: $(DEV)
	$(BIN)/python -m pytest

test-all: $(DEV)
	$(BIN)/python -m pytest -m ''

lint: $(DEV)
	$(BIN)/ruff check cells datasets experiments tests benchmarks

bench: $(DEV)
	$(BIN)/python -m benchmarks.study_throughput
	$(BIN)/python -m benchmarks.run --output benchmarks/RESULTS.md

# the first study's cells shared one configuration; its companion sweeps stay on its page (all of
# them untuned, in its export); the fair page sets the first study's verdicts beside its own
FIRST_STUDY := --sweep study --from docs/results/study_runs.csv --also translation_attention \
	--also long_budget --also translation_tutorial --also translation_medium
results: $(STAMP)
	$(BIN)/rnnlab results --sweep study_fair --from docs/results/study_fair --output docs \
		--compare docs/results/study_runs.csv --link docs/results/first_study/RESULTS.md
	$(BIN)/rnnlab results $(FIRST_STUDY) --output docs/results/first_study --link docs/RESULTS.md

gpu-bench:
	bash benchmarks/gpu.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
