"""A client that hangs up: its wait stops with it, its admission does not.

aiohttp keeps a handler running after its client left unless the runner says
otherwise, so a ``?wait=commit`` request that connected, sent and closed in a
loop left one live wait (task, request, commit waiter) per request for up to
30 s, with no socket held to bound them. ``ApiRunner`` now cancels handlers
whose client hung up, and the submit handlers shield the admission.
"""

from __future__ import annotations

import asyncio
import socket
import time

import msgpack

from ledger.build import build_attest
from node.api import create_app
from node.services import SubmitOutcome, TxStatus
from tests.api.in_process_node import InProcessNode
from tests.api.served_app import ServedApp
from tests.spec.ledger_world import World

HUNG_UP = 50


class CountingNode(InProcessNode):
    """Counts the waits running; admissions wait for ``admit`` before they finish."""

    def __init__(self, world: World) -> None:
        super().__init__(world, world.new_store())
        self.waiting = 0
        self.admit = asyncio.Event()

    async def wait_for_commit(self, tx_id: bytes, timeout_s: float) -> TxStatus:
        self.waiting += 1
        try:
            return await super().wait_for_commit(tx_id, timeout_s)
        finally:
            self.waiting -= 1

    async def submit(self, tx_bytes: bytes) -> SubmitOutcome:
        await self.admit.wait()  # as a tx waits for its proof batch
        return await super().submit(tx_bytes)


def _hang_up_after(port: int, request: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(request)
        time.sleep(0.01)  # the handler has started


def test_a_wait_whose_client_hung_up_stops() -> None:
    world = World()
    node = CountingNode(world)
    tx_id = "ab" * 32
    node.pending_txs[bytes.fromhex(tx_id)] = b"x"  # pending: the wait does not answer at once
    with ServedApp(lambda: create_app(node), "hang-up-wait") as served:
        request = (
            f"GET /v1/txs/{tx_id}?wait=commit&timeout_ms=30000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        ).encode()
        for _ in range(HUNG_UP):
            _hang_up_after(served.port, request)
        deadline = time.monotonic() + 5
        while served.on_loop(lambda: node.waiting) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert served.on_loop(lambda: node.waiting) == 0


def test_an_admission_whose_client_hung_up_still_finishes() -> None:
    world = World()
    node = CountingNode(world)
    attest = build_attest(world.bank_a.identity, world.chain_id, "kyc", bytes(32), nonce=1)
    body = msgpack.packb([attest.encode()])
    with ServedApp(lambda: create_app(node), "hang-up-submit") as served:
        request = (
            "POST /v1/txs:batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/msgpack\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        _hang_up_after(served.port, request)
        time.sleep(0.2)  # the server has seen the client go
        served.on_loop(node.admit.set)
        deadline = time.monotonic() + 5
        while attest.tx_id not in node.pending_txs and time.monotonic() < deadline:
            time.sleep(0.05)
        assert attest.tx_id in node.pending_txs
