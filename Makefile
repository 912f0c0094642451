# codesign: `make demo` and `make test` set everything up themselves on a fresh machine.
PYTHON        ?= python3
VENV          ?= .venv
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS   ?=

BIN   := $(VENV)/bin
STAMP := $(VENV)/.codesign-installed

.PHONY: demo test lint wheel clean

# torch goes in first, pinned, so pip takes the CPU build from local disk instead of
# resolving a bare `torch` requirement to a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip check
	touch $@

demo: $(STAMP)
	$(BIN)/codesign demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check codesign tests benchmarks rtl_sim
	$(BIN)/mypy codesign

wheel: $(STAMP)
	$(BIN)/python -m build --wheel --outdir dist .

clean:
	rm -rf build dist codesign-report .pytest_cache
