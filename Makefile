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
export D2LMINI_BUDGET ?= auto

.PHONY: setup book test test-core test-frameworks test-notebooks test-book bench sync-prose clean

setup: $(VENV)/.installed $(VENV_MX)/.installed $(NUMPY126)/.installed data browser

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

# Fashion-MNIST from the Debian/Ubuntu package when we can; otherwise d2lmini downloads it.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ] || [ -n "$$D2LMINI_DATA" ]; then :; \
	elif command -v apt-get > /dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else echo "Fashion-MNIST: no local copy; d2lmini will download it on first use" \
	  "(or: sudo apt-get install dataset-fashion-mnist, or set D2LMINI_DATA)."; fi

# Headless Chromium for the browser test of the built book.
browser:
	@if command -v chromium > /dev/null; then :; \
	elif command -v apt-get > /dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "chromium not found: install Debian's chromium for the browser test."; fi

book: setup
	$(PY) -m book.tools.build_book

# Copy the shared prose of one chapter notebook into the others: make sync-prose CHAPTER=googlenet FROM=pytorch
sync-prose: $(VENV)/.installed
	$(PY) -m book.tools.sync_prose $(CHAPTER) $(FROM)

test: setup test-core test-frameworks test-notebooks test-book

test-core: setup
	$(PY) -m pytest -q tests/core

test-frameworks: setup
	$(PY) -m pytest -q tests/frameworks
	$(PY_MX) -m pytest -q tests/frameworks

test-notebooks: setup
	D2LMINI_BUDGET=smoke $(PY) -m pytest -q --nbval-lax $$($(PY) -m book.tools.chapters) tests/notebooks

test-book: setup
	$(MAKE) book D2LMINI_BUDGET=smoke
	$(PY) -m pytest -q tests/book

bench: setup
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf _build
