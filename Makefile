# The project's verbs. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
DATA_DIR ?= var
SAMPLE := data/online_retail_sample.csv.gz
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup run load train serve test lint es-up es-down eval eval-search bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools==84.2.1
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

## Load the shipped sample, train, and serve the shop on $(PORT).
run: setup
	$(PY) -m indexer --data-dir $(DATA_DIR) load $(SAMPLE) --if-changed --keep-other
	$(PY) -m indexer --data-dir $(DATA_DIR) train --if-stale
	$(PY) -m indexer --data-dir $(DATA_DIR) serve --host $(HOST) --port $(PORT)

load: setup
	$(PY) -m indexer --data-dir $(DATA_DIR) load $(or $(SOURCE),$(SAMPLE))

train: setup
	$(PY) -m indexer --data-dir $(DATA_DIR) train

serve: setup
	$(PY) -m indexer --data-dir $(DATA_DIR) serve --host $(HOST) --port $(PORT)

## The whole suite; starts Elasticsearch when none is given.
test: setup
	bash scripts/install-browser.sh
	bash scripts/run-tests.sh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

es-up:
	bash scripts/elasticsearch.sh up

es-down:
	bash scripts/elasticsearch.sh down

## Offline evaluation of every recommender; DATASET= (empty) uses the loaded
## catalog. Report in reports/<date>-<dataset>/.
DATASET ?= $(SAMPLE)
eval: setup
	$(PY) -m indexer --data-dir $(DATA_DIR) evaluate $(DATASET) $(EVAL_ARGS)

## Search relevance on the Home Depot judgments, both backends. The catalog
## and its embeddings are kept in $(EVAL_DIR) between runs.
HOMEDEPOT ?= ../shared/datasets/homedepot-relevance
EVAL_DIR ?= $(HOME)/.cache/shop-search-eval
eval-search: setup
	ELASTICSEARCH_URL=$${ELASTICSEARCH_URL:-$$(bash scripts/elasticsearch.sh up | tail -1)} \
	ELASTICSEARCH_ALIAS=$${ELASTICSEARCH_ALIAS:-search-eval} \
	$(PY) -m indexer --data-dir $(EVAL_DIR) eval-search \
	  $(HOMEDEPOT)/products.csv.gz $(HOMEDEPOT)/judgments-dev.csv.gz \
	  --mapping data/mappings/homedepot.json --backends embedded elasticsearch \
	  --tune $(EVAL_ARGS)

bench: setup
	ELASTICSEARCH_URL=$${ELASTICSEARCH_URL:-$$(bash scripts/elasticsearch.sh up | tail -1)} $(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(DATA_DIR) .pytest_cache
