"""An ``InProcessNode`` (tests/api) over a LevelDB store with real blocks, its API app
served on a real 127.0.0.1 port from a thread: what the SDK tests talk to."""

from __future__ import annotations

from pathlib import Path

from ledger.chain import open_chain
from ledger.leveldb_store import LevelDBStore
from ledger.stored_block import stored_block_claim
from node.api import create_app
from tests.api.chain_fixture import ApiChain
from tests.api.in_process_node import InProcessNode
from tests.api.served_app import ServedApp


class ServedNode(ServedApp):
    def __init__(self, chain: ApiChain, path: Path) -> None:
        self.store = LevelDBStore(path, block_claims=stored_block_claim)
        open_chain(self.store, chain.world.genesis)
        self.node = InProcessNode(chain.world, self.store)
        super().__init__(lambda: create_app(self.node, max_wait_ms=30_000), "sdk-api")

    def commit_pending(self) -> int:
        return self.on_loop(self.node.commit_pending)

    def submit(self, tx_bytes: bytes) -> None:
        self.run(self.node.submit(tx_bytes))

    def submit_and_commit(self, tx_bytes: bytes) -> None:
        self.submit(tx_bytes)
        self.commit_pending()

    def __enter__(self) -> ServedNode:
        super().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.store.close()
