# ErrorTaxa: `make demo` classifies the bundled example with the embedded default taxonomy,
# `make test` runs the checks and the test suite.  Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: install demo test lint bench reliability clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e clients/python -e '.[dev,oov,study,ray]'
	touch $@

demo: install
	mkdir -p out
	$(BIN)/errortaxa classify examples/predictions.jsonl --output out/decisions.jsonl --summary out/summary.json
	@echo "decisions: out/decisions.jsonl  summary: out/summary.json"
	@$(PY) -c "import json; s = json.load(open('out/summary.json'))['headline']; \
	print('top-1 %.3f  multi-label %.3f' % (s['top1_accuracy'], s['multi_label_accuracy'])); \
	[print('  %-28s %5d  %.3f' % (k, v['count'], v['share'])) for k, v in s['categories'].items()]"

lint: install
	$(PY) scripts/gen_protos.py --check
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(PY) -m pytest

# minutes: long fuzz, load under hot reload, kill -9, SIGTERM under load, streams, damaged stores
reliability: install
	$(PY) -m pytest -p no:cacheprovider -m reliability tests/reliability

bench: install
	$(PY) bench/engine.py

clean:
	rm -rf $(VENV) out
