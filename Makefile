# Generative Image Models, Hands-On: the commands the README gives.
#   make book   set up .venv (first time) and build the book in quick mode -> _build/html/index.html
#   make test   lint and run every test, the chapter notebooks included (quick mode)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# jupyter-book's -W turns every Sphinx warning into an error; -n checks every reference.
BOOK_FLAGS ?= -W -n --keep-going

.PHONY: setup book book-full test test-fast lab clean

setup: $(VENV)/.genlib-installed

$(VENV)/.genlib-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev,book]"
	touch $@

book: setup
	GENLIB_QUICK=1 $(BIN)/jupyter-book build . $(BOOK_FLAGS)
	@echo "The book is at _build/html/index.html"

book-full: setup
	GENLIB_QUICK=0 $(BIN)/jupyter-book build . $(BOOK_FLAGS)
	@echo "The book is at _build/html/index.html"

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest tests -m "not slow" --ignore=tests/book

# Open .md chapters as notebooks by default, for this environment only (no user settings touched).
LAB_OVERRIDES = $(VENV)/share/jupyter/lab/settings/overrides.json
lab: setup
	mkdir -p $(dir $(LAB_OVERRIDES))
	echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}' > $(LAB_OVERRIDES)
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf _build
