# Two entry points from a fresh clone: `make devnet` and `make test`.
# Both create .venv with the machine's python3 and install the project with its dev extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NATIVE_STAMP := $(VENV)/.native-msm-stamp
MSM := privacy/msm
PACKAGES := privacy consensus ledger node client devnet

.PHONY: test lint typecheck unit devnet install clean soak

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing veil and its dev tools into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# The native multiscalar backend (docs/privacy.md, "Multiscalar backends"), built at
# install time so a compiler error shows here, in full, and fails make. Missing
# libdecaf/compiler: installed with apt-get as root, else one line says the
# libsodium backend is used (no stamp, so every run says it again).
$(NATIVE_STAMP): $(STAMP) $(MSM)/veil_msm.c $(MSM)/veil_msm.h $(MSM)/veil_field.h $(MSM)/veil_scalars.c $(MSM)/build.py $(MSM)/native_deps.sh
	@status=0; $(MSM)/native_deps.sh $(BIN)/python || status=$$?; \
	if [ $$status -eq 0 ]; then \
		$(BIN)/python -m privacy.msm.build && touch $(NATIVE_STAMP); \
	elif [ $$status -ne 2 ]; then exit $$status; fi

install: $(NATIVE_STAMP)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy --strict $(PACKAGES) benchmarks

unit: install
	$(BIN)/python -m pytest

test: lint typecheck unit

# The long runs (tens of minutes on two cores): 5000 simulator seeds at n = 4 and
# n = 7, each harsh fault combination on 200 seeds (one JSON summary per run),
# then 10,000 junk peer connections against a validator (RSS before and after).
soak: install
	$(BIN)/python -m consensus.sim.soak
	VEIL_JUNK_FRAMES=10000 $(BIN)/python -m pytest -q -s tests/integration/test_peer_junk.py

devnet: install
	$(BIN)/python -m devnet up

clean:
	rm -rf $(VENV) $(MSM)/_native*.so .mypy_cache .pytest_cache .ruff_cache .hypothesis
