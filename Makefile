# ErrorTaxa: `make demo` classifies the bundled example with the embedded default taxonomy,
# `make test` runs the checks and the test suite.  Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# the protobuf / gRPC generator lives apart (scripts/gen_protos.py says why)
CODEGEN ?= .venv-codegen

.PHONY: install codegen demo test test-matrix lint bench reliability reliability-replicas test-postgres clean

install: $(VENV)/.installed

# tests/providers/echo_provider: a provider distribution of the tests, found through its entry point only
$(VENV)/.installed: pyproject.toml setup.py clients/python/pyproject.toml tests/providers/echo_provider/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e clients/python -e '.[dev,serve,remote,study,oov,ray,parquet,torch,explore,factors,postgres]' \
		-e tests/providers/echo_provider
	touch $@

codegen: $(CODEGEN)/.installed

$(CODEGEN)/.installed: scripts/gen_protos.py
	python3 -m venv $(CODEGEN)
	$(CODEGEN)/bin/python -m pip install -q "$$(python3 scripts/gen_protos.py --requirement)"
	touch $@

demo: install
	mkdir -p out
	$(BIN)/errortaxa classify examples/predictions.jsonl --output out/decisions.jsonl --summary out/summary.json
	@echo "decisions: out/decisions.jsonl  summary: out/summary.json"
	@$(PY) -c "import json; s = json.load(open('out/summary.json'))['headline']; \
	print('top-1 %.3f  MLA (per class) %.3f' % (s['top1_accuracy'], s['mla'])); \
	[print('  %-28s %5d  %.3f' % (k, v['count'], v['share'])) for k, v in s['categories'].items()]"

lint: install codegen
	$(CODEGEN)/bin/python scripts/gen_protos.py --check
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mypy bench scripts
	$(PY) scripts/check_imports.py

test: lint
	$(PY) -m pytest

# minutes: long fuzz, load under hot reload, kill -9, SIGTERM under load, streams, damaged stores
reliability: install
	$(PY) -m pytest -p no:cacheprovider -m reliability tests/reliability

# minutes: three replicas on a PostgreSQL store under load (propagation figures, kill -9, the database
# stopped); PostgreSQL is started by the tests (tests/pg.py)
reliability-replicas: install
	$(PY) -m pytest -p no:cacheprovider -m reliability tests/reliability/test_rel_replicas.py

# the service suite with every server it starts on a PostgreSQL store (tests/pg.py starts one); the
# store tests run against both stores in `make test` already
test-postgres: install
	ERRORTAXA_TEST_STORE=postgresql $(PY) -m pytest -p no:cacheprovider tests/test_service.py \
		tests/test_service_admission.py tests/test_service_conventions.py tests/test_service_limits.py \
		tests/test_service_small.py

# the client with the oldest supported and other grpcio / protobuf releases, each in its own venv
test-matrix: install
	$(PY) -m pytest -m matrix tests/test_packaging.py

bench: install
	$(PY) bench/engine.py

# the explorer on the bundled example with generated models and placeholder images (Ctrl+C stops it)
.PHONY: explore-demo
explore-demo: install
	$(PY) scripts/make_demo_images.py out/explore-demo
	$(BIN)/errortaxa explore out/explore-demo/models --images out/explore-demo/images \
		--notes out/explore-demo/notes.jsonl

clean:
	rm -rf $(VENV) $(CODEGEN) out

# docs/img/explorer_*.png for docs/EXPLORER.md: the explorer in Debian's Chromium (Playwright);
# not run by the tests
.PHONY: docs-screenshots
docs-screenshots: install
	$(PY) scripts/docs_screenshots.py
