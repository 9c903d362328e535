# Two entry points from a fresh clone: `make devnet` and `make test`.
# Both create .venv with the machine's python3 and install the project with its dev extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PACKAGES := privacy consensus ledger node client devnet

.PHONY: test lint typecheck unit devnet install clean soak

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing veil and its dev tools into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict $(PACKAGES) benchmarks

unit: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck unit

# The long simulator runs (tens of minutes on two cores): 5000 seeds at n = 4 and
# n = 7, then each harsh fault combination on 200 seeds; one JSON summary per run.
soak: $(STAMP)
	$(BIN)/python -m consensus.sim.soak

devnet: $(STAMP)
	$(BIN)/python -m devnet up

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
