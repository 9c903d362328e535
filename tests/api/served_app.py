"""An aiohttp app served on a real 127.0.0.1 port from its own event loop in a thread:
what the schemathesis run and the SDK tests talk to over real sockets."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import TypeVar

from aiohttp import web

from node.api.runner import ApiRunner

T = TypeVar("T")


class ServedApp:
    """``make_app()``'s app, made and run on this object's loop, bound to a free port."""

    def __init__(self, make_app: Callable[[], web.Application], thread_name: str) -> None:
        self._make_app = make_app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self._runner = ApiRunner(self._make_app())  # the node's runner, as `start_api` uses
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server), server
        self.port = server.sockets[0].getsockname()[1]

    def run(self, coroutine: Coroutine[object, object, T]) -> T:
        """Run ``coroutine`` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (the app's state is the loop's)."""

        async def call() -> T:
            return fn()

        return self.run(call())

    def __enter__(self) -> ServedApp:
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
