# Two entry points from a fresh clone: `make devnet` and `make test`.
# Both create .venv with the machine's python3 and install the project with its dev extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NATIVE_STAMP := $(VENV)/.native-msm-stamp
MSM := privacy/msm
SMT_STAMP := $(VENV)/.native-smt-stamp
SMT := ledger/native
PACKAGES := privacy consensus ledger node client devnet

.PHONY: test lint typecheck unit devnet install clean soak soak-chaos browser netfaults

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing veil and its dev tools into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# The native multiscalar backend (docs/privacy.md, "Multiscalar backends"), built at
# install time so a compiler error shows here, in full, and fails make. Missing
# libdecaf/compiler: installed with apt-get as root, else one line says the
# libsodium backend is used (no stamp, so every run says it again).
$(NATIVE_STAMP): $(STAMP) $(MSM)/veil_msm.c $(MSM)/veil_msm.h $(MSM)/veil_msm_decoded.h $(MSM)/veil_field.h $(MSM)/veil_scalars.c $(MSM)/veil_ed25519.c $(MSM)/veil_ed25519.h $(MSM)/build.py $(MSM)/native_deps.sh
	@status=0; $(MSM)/native_deps.sh $(BIN)/python || status=$$?; \
	if [ $$status -eq 0 ]; then \
		$(BIN)/python -m privacy.msm.build && touch $(NATIVE_STAMP); \
	elif [ $$status -ne 2 ]; then exit $$status; fi

# The state tree's C walk and node cache (ledger/native/*.c), against OpenSSL's libcrypto:
# its headers are installed with apt-get as root when missing; otherwise the build
# says in one line that the Python walk is used (exit 2, no stamp).
$(SMT_STAMP): $(STAMP) $(wildcard $(SMT)/*.c $(SMT)/*.h) $(SMT)/build.py
	@if [ ! -f /usr/include/openssl/evp.h ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing libssl-dev for the state tree's C walk ..."; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends libssl-dev >/dev/null; } || true; \
	fi; \
	status=0; $(BIN)/python -m ledger.native.build || status=$$?; \
	if [ $$status -eq 0 ]; then touch $(SMT_STAMP); elif [ $$status -ne 2 ]; then exit $$status; fi

install: $(NATIVE_STAMP) $(SMT_STAMP)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy --strict $(PACKAGES) benchmarks

# The explorer's browser test (tests/integration/test_explorer_browser.py) drives
# Debian's headless chromium through chromedriver: installed with apt-get as root,
# otherwise make stops here naming the two packages (the test is never skipped).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver for the explorer's browser test ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium chromium-driver >/dev/null || exit 1; \
	else \
		echo "the explorer's browser test needs Debian's chromium and chromium-driver:" \
			"run 'sudo apt-get install chromium chromium-driver', then make test again" >&2; \
		exit 1; \
	fi

# The --netns chaos tests (root only; tests/integration/test_chaos.py) shape links with
# tc netem, or, where the kernel has no sch_netem (containers), with nftables rules and
# a delay relay: nft is installed with apt-get as root. Without root those tests skip.
netfaults:
	@if [ "$$(id -u)" != 0 ] || command -v nft >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "installing nftables for the --netns chaos tests ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends nftables >/dev/null || exit 1; \
	else \
		echo "the --netns chaos tests need nftables (nft): install it, then make test again" >&2; \
		exit 1; \
	fi

unit: install browser netfaults
	$(BIN)/python -m pytest

test: lint typecheck unit

# The long runs (tens of minutes on two cores): 5000 simulator seeds at n = 4 and
# n = 7, each harsh fault combination on 200 seeds (one JSON summary per run),
# then 10,000 junk peer connections against a validator (RSS before and after).
# Then the chaos soak (issue 12, docs/reliability.md).
soak: install
	$(BIN)/python -m consensus.sim.soak
	VEIL_JUNK_FRAMES=10000 $(BIN)/python -m pytest -q -s tests/integration/test_peer_junk.py
	$(MAKE) soak-chaos

# The chaos soak against real devnets, one JSON line per run in $(SOAK_DIR)/results.jsonl:
# 200 primary kills (127.0.0.1), then on a --netns devnet (root) 30 minutes of flapping
# links, 30 minutes of partitions (2 | 2 and one node alone) and 30 minutes of a
# byzantine primary. Every run stops its devnet; the first violation fails make.
SOAK_DIR := .soak
CHAOS = $(BIN)/python -m devnet chaos --json
soak-chaos: install
	rm -rf $(SOAK_DIR) && mkdir -p $(SOAK_DIR)
	$(BIN)/python -m devnet up --no-demo --dir $(SOAK_DIR)/loopback --base-port 8800
	status=0; $(CHAOS) --dir $(SOAK_DIR)/loopback --scenario kill-primary --rounds 200 \
		--duration 21600 --seed 1 >> $(SOAK_DIR)/results.jsonl || status=$$?; \
	$(BIN)/python -m devnet down --dir $(SOAK_DIR)/loopback; exit $$status
	$(BIN)/python -m devnet up --no-demo --netns --dir $(SOAK_DIR)/netns
	status=0; \
	for scenario in flaky partition byzantine; do \
		$(CHAOS) --dir $(SOAK_DIR)/netns --scenario $$scenario --duration 1800 --seed 1 \
			>> $(SOAK_DIR)/results.jsonl || { status=$$?; break; }; \
	done; \
	$(BIN)/python -m devnet down --dir $(SOAK_DIR)/netns; exit $$status

devnet: install
	$(BIN)/python -m devnet up

clean:
	rm -rf $(VENV) $(MSM)/_native*.so $(SMT)/_smt*.so .mypy_cache .pytest_cache .ruff_cache .hypothesis
