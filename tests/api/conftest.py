from __future__ import annotations

import pytest

from tests.api.chain_fixture import ApiChain, build_chain


@pytest.fixture(scope="session")
def api_chain() -> ApiChain:
    """Built once per session: the range proofs take seconds in pure Python."""
    return build_chain()
