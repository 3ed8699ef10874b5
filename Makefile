# Two commands a reader needs: `make book` and `make test`. Both run `make setup` first,
# which installs only what is missing (a second run finishes in seconds).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
VENV_MX := .venv-mxnet
PY := $(VENV)/bin/python
PY_MX := $(VENV_MX)/bin/python
# numpy 1.26 beside MXNet, to test d2lmini's numpy.bool shim (the combination Python 3.12 leaves)
NUMPY126 := $(VENV_MX)/numpy126
# The [mxnet] extra as a Python 3.12 user gets it (numpy 1.26, setuptools): resolved, not pinned.
PYTHON312 ?= $(shell command -v python3.12 > /dev/null && python3.12 -c '' 2> /dev/null && echo python3.12 \
  || ls -d $$(pyenv root 2> /dev/null)/versions/3.12*/bin/python3.12 2> /dev/null | tail -1)
VENV_MX312 := .venv-mxnet312
PY_MX312 := $(VENV_MX312)/bin/python
# MathJax for the book, served from _static instead of a CDN (npm package `mathjax`, es5 build)
MATHJAX_VERSION := 3.2.2
MATHJAX := .mathjax
export D2LMINI_BUDGET ?= auto

.PHONY: setup book pdf reference test test-imports test-core test-frameworks test-notebooks test-book test-standalone bench sync-prose clean

setup: $(VENV)/.installed $(VENV_MX)/.installed $(NUMPY126)/.installed $(VENV_MX312)/.installed \
  $(MATHJAX)/.installed-$(MATHJAX_VERSION) data browser

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(PY) -m d2lmini.frameworks $(VENV) kernel label | while read kernel label; do \
	  $(PY) -m ipykernel install --prefix=$(VENV) --name $$kernel \
	    --display-name "d2lmini ($$label)" > /dev/null; done
	touch $@

$(VENV_MX)/.installed: requirements-mxnet.txt pyproject.toml $(VENV)/.installed
	test -x $(PY_MX) || $(PYTHON) -m venv $(VENV_MX)
	$(PY_MX) -m pip install --quiet --disable-pip-version-check -r requirements-mxnet.txt
	$(PY_MX) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(PY_MX) -m d2lmini.frameworks $(VENV_MX) kernel label | while read kernel label; do \
	  for prefix in $(VENV) $(VENV_MX); do \
	    $(PY_MX) -m ipykernel install --prefix=$$prefix --name $$kernel \
	      --display-name "d2lmini ($$label)" > /dev/null 2>&1; done; done
	touch $@

$(NUMPY126)/.installed: $(VENV_MX)/.installed
	$(PY_MX) -m pip install --quiet --disable-pip-version-check --upgrade --target $(NUMPY126) numpy==1.26.4
	touch $@

# Python 3.12 with d2lmini[mxnet] installed the way a user installs it (a built wheel, the extra's
# own ranges), to test that MXNet runs there. Reinstalled when d2lmini changes.
$(VENV_MX312)/.installed: pyproject.toml LICENSE $(wildcard d2lmini/*.py)
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found: install it, or set PYTHON312=/path/to/python3.12"; exit 1; }
	test -x $(PY_MX312) || $(PYTHON312) -m venv $(VENV_MX312)
	rm -rf $(VENV_MX312)/wheel && $(PY_MX312) -m pip wheel --quiet --disable-pip-version-check --no-deps -w $(VENV_MX312)/wheel .
	$(PY_MX312) -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps $(VENV_MX312)/wheel/d2lmini-*.whl
	$(PY_MX312) -m pip install --quiet --disable-pip-version-check "$$(ls $(VENV_MX312)/wheel/d2lmini-*.whl)[mxnet]" \
	  pytest ipykernel nbclient
	rm -rf build
	touch $@

$(MATHJAX)/.installed-$(MATHJAX_VERSION):
	@command -v npm > /dev/null || { echo "npm not found: install Node.js and npm (Debian: apt-get install npm) for MathJax"; exit 1; }
	rm -rf $(MATHJAX) && mkdir -p $(MATHJAX)/npm
	cd $(MATHJAX)/npm && npm pack --silent mathjax@$(MATHJAX_VERSION) > /dev/null
	tar -xzf $(MATHJAX)/npm/mathjax-$(MATHJAX_VERSION).tgz -C $(MATHJAX)/npm
	mv $(MATHJAX)/npm/package/es5 $(MATHJAX)/mathjax && rm -rf $(MATHJAX)/npm
	touch $@

# Fashion-MNIST from the Debian/Ubuntu package when we can; otherwise d2lmini downloads it.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ] || [ -n "$$D2LMINI_DATA" ]; then :; \
	elif command -v apt-get > /dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else echo "Fashion-MNIST: no local copy; d2lmini will download it on first use" \
	  "(or: sudo apt-get install dataset-fashion-mnist, or set D2LMINI_DATA)."; fi

# Headless Chromium for the browser test of the built book and for the PDFs; poppler-utils
# (pdftoppm, pdftotext) for the PDF test.
browser:
	@if command -v chromium > /dev/null; then :; \
	elif command -v apt-get > /dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "chromium not found: install Debian's chromium for the browser test."; fi
	@if command -v pdftoppm > /dev/null; then :; \
	elif command -v apt-get > /dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils; \
	else echo "pdftoppm not found: install poppler-utils for the PDF test."; fi

book: setup
	$(PY) -m book.tools.build_book

# Copy the shared prose of one chapter notebook into the others: make sync-prose CHAPTER=googlenet FROM=pytorch
sync-prose: $(VENV)/.installed
	$(PY) -m book.tools.sync_prose $(CHAPTER) $(FROM)

# One PDF of the book per framework: _build/pdf/<framework>.pdf
pdf: setup
	$(PY) -m book.tools.build_pdf

test: setup test-imports test-core test-frameworks test-notebooks test-book test-standalone

# The import contracts of pyproject.toml ([tool.importlinter]): layers, no circles, a
# framework-free core.
test-imports: setup
	$(VENV)/bin/lint-imports --no-cache

test-core: setup
	$(PY) -m pytest -q tests/core

test-frameworks: setup
	$(PY) -m pytest -q tests/frameworks
	$(PY_MX) -m pytest -q tests/frameworks

# nbval runs each framework's notebooks with its kernel (the notebooks name Colab's python3).
test-notebooks: setup
	$(PY) -m book.tools.chapters | while read kernel notebooks; do \
	  D2LMINI_BUDGET=smoke $(PY) -m pytest -q --nbval-lax --nbval-kernel-name $$kernel $$notebooks \
	    || exit 1; done
	D2LMINI_BUDGET=smoke $(PY) -m pytest -q tests/notebooks

test-book: setup
	$(MAKE) book D2LMINI_BUDGET=smoke
	$(MAKE) pdf D2LMINI_BUDGET=smoke
	$(PY) -m pytest -q tests/book

# Full-budget runs of a chapter's notebooks, kept in book/<chapter>/reference/ (hours on a CPU;
# run it again after an interruption to resume). CHAPTER= and FRAMEWORKS= (comma-separated);
# RUNS= (comma-separated) trains only those of a notebook's named runs.
reference: setup
	$(PY) -m book.tools.reference $(if $(CHAPTER),--chapter $(CHAPTER)) \
	  $(if $(FRAMEWORKS),--frameworks $(FRAMEWORKS)) $(if $(RUNS),--runs $(RUNS))

# A notebook alone with d2lmini from a built wheel (PyTorch on a fresh Python 3.11 venv; MXNet on
# Python 3.12 through the [mxnet] extra, whose framework tests run there too); LICENSE in wheel/sdist.
test-standalone: setup
	@# bin/pytest, not python -m pytest, so that d2lmini comes from the wheel, not the checkout;
	@# numpy 1.26 is this environment's own numpy, so the numpy126 side-copy test does not apply
	$(VENV_MX312)/bin/pytest -q tests/frameworks --framework mxnet \
	  --deselect tests/frameworks/test_mxnet_numpy126.py::test_mxnet_runs_on_numpy_1_26
	D2LMINI_BUDGET=smoke $(PY) -m pytest -q tests/standalone

bench: setup
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf _build build dist
