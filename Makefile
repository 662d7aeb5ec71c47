# pyvi: the two commands of the README, and the developer's shortcuts.
#   make report   install, then run the main job on the embedded default data -> $(OUT)/
#   make test     install, then run the test suite
# Both work from a fresh clone with nothing but Python: they use the active virtualenv, or create
# .venv here when none is active.

PYTHON ?= python3
VENV ?= $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),$(CURDIR)/.venv)
BIN := $(VENV)/bin
STAMP := $(VENV)/.pyvi-installed-$(notdir $(CURDIR))
OUT ?= results
NATIVE := $(shell find csrc -type f) setup.py pyproject.toml requirements-build.txt

.PHONY: report test install build bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Editable install: Python edits need no reinstall; a change under csrc/ triggers a rebuild.
$(STAMP): $(BIN)/python $(NATIVE)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-build.txt
	$(BIN)/python -m pip install --no-build-isolation -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

report: install
	$(BIN)/pyvi report --out $(OUT)

test: install
	$(BIN)/python -m pytest

# Incremental rebuild of the extensions in place (ninja), for development.
build: install
	$(BIN)/python setup.py build_ext --inplace

# Full benchmarks; writes bench/results.json and the README table source bench/results.md.
bench: install
	$(BIN)/python -m pytest bench --benchmark-enable --benchmark-json=bench/results.json -p no:cacheprovider
	$(BIN)/python bench/table.py bench/results.json > bench/results.md

# Every benchmark once at tiny sizes, untimed: keeps bench/ from rotting (run by CI).
bench-quick: install
	PYVI_BENCH_QUICK=1 $(BIN)/python -m pytest bench --benchmark-disable -q -p no:cacheprovider

clean:
	rm -rf build *.egg-info pyvi/*.so pyvi/_build.json
