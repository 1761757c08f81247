# trucewatch: `make demo` and `make test` work on a fresh clone (they create .venv themselves).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test unit integration faults lint bench clean help

help:
	@echo "make demo   - install into $(VENV), start the embedded broker + pipeline on examples/, print alerts (Ctrl-C stops)"
	@echo "make test   - install with test extras, then run unit, integration and fault tests"
	@echo "make lint   - ruff + mypy"
	@echo "make bench  - run the benchmarks in bench/"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,rocksdb]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf var/demo
	TRUCEWATCH_DATA_DIR=var/demo $(BIN)/trucewatch up examples/seeds.jsonl

test: $(STAMP)
	bash scripts/ensure-system-deps.sh
	$(BIN)/python -m pytest tests -q -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/python -m pytest tests -q -m "not integration and not faults"

integration: $(STAMP)
	$(BIN)/python -m pytest tests -q -m "integration"

faults: $(STAMP)
	$(BIN)/python -m pytest tests -q -m "faults"

lint: $(STAMP)
	$(BIN)/ruff check trucewatch producers processors sinks tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/poll.py
	$(BIN)/python bench/replay.py

clean:
	rm -rf $(VENV) var .pytest_cache
