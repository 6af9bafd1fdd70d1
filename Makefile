# NetCanvas: the README's two commands. Each one sets up .venv first (pip, no other tools).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean

# The first set-up downloads torch's CUDA build (about 2.5 GB; 3 minutes on a fast line): pip shows
# its progress bars, so a first `make run` does not look frozen.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Setting up $(VENV): the first time this downloads PyTorch (about 2.5 GB) and takes a few minutes…"
	$(PY) -m pip install -q --upgrade pip setuptools >/dev/null 2>&1 || true
	$(PY) -m pip install --progress-bar on -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) tests/typecheck/check.py
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) tests/typecheck/check.py

bench: $(STAMP)
	$(PY) bench/analysis.py
	$(PY) bench/layout.py
	$(PY) bench/compile.py
	$(PY) bench/train.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/gui.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/gui_training.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
