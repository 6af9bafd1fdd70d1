# NetCanvas: the README's two commands. Each one sets up .venv first (pip, no other tools).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools >/dev/null 2>&1 || true
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

test: $(STAMP)
	$(PY) -m ruff check .
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) bench/analysis.py
	$(PY) bench/compile.py
	$(PY) bench/train.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/gui.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/gui_training.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
