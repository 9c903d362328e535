from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.api.chain_fixture import ApiChain, build_chain
from tests.client.served_node import ServedNode


@pytest.fixture(scope="session")
def api_chain() -> ApiChain:
    """Built once per session: the range proofs take seconds in pure Python."""
    return build_chain()


@pytest.fixture
def served(api_chain: ApiChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedNode]:
    """A fresh node holding tests/api's two blocks (an issue, then a transfer)."""
    with ServedNode(api_chain, tmp_path_factory.mktemp("sdk-store")) as server:
        server.submit_and_commit(api_chain.issue.encode())
        server.submit_and_commit(api_chain.transfer.encode())
        yield server


@pytest.fixture
def served_loan(
    api_chain: ApiChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedNode]:
    """As ``served``, with tests/api's loan (bank A to alice) in block 2 after the transfer."""
    with ServedNode(api_chain, tmp_path_factory.mktemp("sdk-loan-store")) as server:
        server.submit_and_commit(api_chain.issue.encode())
        server.submit(api_chain.transfer.encode())
        server.submit_and_commit(api_chain.loan.encode())
        yield server


@pytest.fixture
def auto_commit(served: ServedNode) -> Iterator[None]:
    """Plays consensus: commits whatever is pending, every 50 ms."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            if served.on_loop(lambda: bool(served.node.pending_txs)):
                served.commit_pending()
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)
