# The two commands of the README: `make book` and `make test`.
# Both create the local virtual environment .venv on first use and install the pinned
# dependencies of constraints.txt into it, so a fresh clone needs only Python 3.11.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := argminlib
MATHJAX_VERSION := 3.2.2
MATHJAX := _mathjax/mathjax/es5/tex-mml-chtml.js

.PHONY: all book test lint bench venv clean distclean

all: test book

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (argminlib)" >/dev/null
	@touch $(STAMP)

# MathJax is served with the book (not from a CDN), so equations render offline. It comes
# from the npm registry as the mathjax package; only its es5 bundle is kept.
$(MATHJAX):
	@command -v npm >/dev/null || { echo "npm is needed to fetch MathJax (Debian: apt-get install npm)"; exit 1; }
	rm -rf _mathjax && mkdir -p _mathjax
	cd _mathjax && npm pack mathjax@$(MATHJAX_VERSION) --silent >/dev/null \
	  && tar xzf mathjax-$(MATHJAX_VERSION).tgz package/es5 package/LICENSE \
	  && mv package mathjax && rm mathjax-$(MATHJAX_VERSION).tgz
	@test -f $(MATHJAX)

book: $(STAMP) $(MATHJAX)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "Book built: _build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check argminlib tests benchmarks
	$(BIN)/ruff format --check argminlib tests benchmarks

# The tests include the built book (headless Chromium opens every page), so build it first.
test: $(STAMP) lint book
	$(BIN)/python -m pytest -q

# The performance table (time / analytic floor, per method and size; about 5 minutes) and
# the older FD-vs-implicit hypergradient table. BENCH_FLAGS=--quick for a short run.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_performance.py $(BENCH_FLAGS)
	$(BIN)/python benchmarks/bench_hypergradient.py

clean:
	rm -rf _build .pytest_cache _mathjax

distclean: clean
	rm -rf $(VENV)
