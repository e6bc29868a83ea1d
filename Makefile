# The two front-door commands (see README.md):
#   make reproduce   -- install, then reproduce the paper's figures on the embedded data (CPU, quick preset)
#   make test        -- install (incl. headless Chromium and Tux Paint's stamps), then lint + the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PRESET ?= quick

.PHONY: install browser objects lint notebooks test test-fast reproduce clean-figures

# The install also sets up nbstripout's git filter in this clone's .git (nothing outside it): git strips
# notebook outputs before it sees them, as JupyterLab autosaves outputs into the explorer while it is used.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,text,diffusers]"
	if git rev-parse --git-dir >/dev/null 2>&1; then $(BIN)/nbstripout --install; fi
	touch $(STAMP)
	@echo "PYoCo Lab is installed in $(VENV) (torch $$($(BIN)/python -c 'import torch; print(torch.__version__)')):" \
		"$(BIN)/pyoco-lab --help lists the commands; make reproduce and make test are the two front doors"

install: $(STAMP)

# Debian packages some tests need (installed when missing; a failure stops `make test` rather than
# letting those tests skip): Chromium for the browser tests, Tux Paint's stamps for the object-motion set.
browser:
	bash .ci/install-debian.sh browser /usr/bin/chromium chromium fonts-dejavu-core

objects:
	bash .ci/install-debian.sh objects /usr/share/tuxpaint/stamps tuxpaint-stamps-default

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash .ci/verify-notebooks.sh $(BIN)/nbstripout

# notebooks/NN_name.py (jupytext py:percent, what you edit and ruff checks) and NN_name.ipynb (what papermill
# runs) are pairs: sync them (the more recently modified file of a pair wins), ruff-format the .py, strip the .ipynb.
notebooks: install
	$(BIN)/jupytext --sync notebooks/*.py
	$(BIN)/ruff format notebooks/
	$(BIN)/jupytext --sync notebooks/*.py
	$(BIN)/nbstripout notebooks/*.ipynb

test: install browser objects lint
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser" -x -q

reproduce: install
	$(BIN)/pyoco-lab reproduce --preset $(PRESET)
