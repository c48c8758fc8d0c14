# xsched-ops: set-up, tests, demo.
#   make demo   -- the main job on the embedded default (the sandbox), from a fresh machine
#   make test   -- everything the tests need, then the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch that the torch-backend tests use (a local file on these machines).
TORCH_SPEC ?= torch==2.13.0

.PHONY: install install-torch setup test test-fast lint demo clean

$(BIN)/xsched-ops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,ssh]'
	@touch $@

install: $(BIN)/xsched-ops

install-torch: install
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH_SPEC)"
	@# transformers: the llm-decode profile's model file is tested on the CPU with a tiny GPT-2.
	@$(BIN)/python -c "import transformers" 2>/dev/null || $(BIN)/pip install -q transformers

# System tools (docker.io, debootstrap, g++, chromium for the report test, openssh-server for the
# ssh:// test) and a running engine.
setup:
	bash docker/ensure-engine.sh chromium openssh-server

test: setup install install-torch
	$(BIN)/pytest -ra

# Without the engine-backed tests: quick feedback while editing.
test-fast: install
	$(BIN)/pytest -ra -m "not docker and not slow"

lint: install
	$(BIN)/ruff check xsched_ops tests bench

demo: install
	bash docker/ensure-engine.sh
	bash docker/demo.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache results
