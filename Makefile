# The two commands of the README: `make book` and `make test`.
# Both create the local virtual environment .venv on first use and install the pinned
# dependencies of constraints.txt into it, so a fresh clone needs only Python 3.11.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := argminlib
JOBS   ?= 2

.PHONY: all book test lint bench venv clean distclean

all: test book

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (argminlib)" >/dev/null
	@touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "Book built: _build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check argminlib tests benchmarks
	$(BIN)/ruff format --check argminlib tests benchmarks

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_hypergradient.py

clean:
	rm -rf _build .pytest_cache

distclean: clean
	rm -rf $(VENV)
