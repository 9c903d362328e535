from __future__ import annotations

import pytest

from tests.integration.node_processes import Funded, build_funded


@pytest.fixture(scope="session")
def funded() -> Funded:
    """Built once per session: the range proofs take seconds."""
    return build_funded()
