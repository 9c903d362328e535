"""An ``InProcessNode`` (tests/api) over a LevelDB store with real blocks, its API app
served on a real 127.0.0.1 port from a thread: what the SDK tests talk to."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from ledger.chain import open_chain
from ledger.leveldb_store import LevelDBStore
from ledger.stored_block import stored_block_claim
from node.api import create_app
from tests.api.chain_fixture import ApiChain
from tests.api.in_process_node import InProcessNode

T = TypeVar("T")


class ServedNode:
    def __init__(self, chain: ApiChain, path: Path) -> None:
        self.store = LevelDBStore(path, block_claims=stored_block_claim)
        open_chain(self.store, chain.world.genesis)
        self.node = InProcessNode(chain.world, self.store)
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, name="sdk-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self._runner = web.AppRunner(create_app(self.node, max_wait_ms=30_000))
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (the node's state is the loop's)."""

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(60)

    def commit_pending(self) -> int:
        return self.on_loop(self.node.commit_pending)

    def submit(self, tx_bytes: bytes) -> None:
        asyncio.run_coroutine_threadsafe(self.node.submit(tx_bytes), self.loop).result(60)

    def submit_and_commit(self, tx_bytes: bytes) -> None:
        self.submit(tx_bytes)
        self.commit_pending()

    def __enter__(self) -> ServedNode:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the API did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()
        self.store.close()
