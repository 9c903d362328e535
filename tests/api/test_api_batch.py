"""``POST /v1/txs:batch`` admits its txs together: their range proofs can share one proof
window, where one at a time they waited one window each."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgpack
import pytest
from aiohttp.test_utils import TestClient, TestServer

from client.api_types import BatchItem
from ledger.build import BuiltTx, build_attest
from ledger.store import Store
from node.api import create_app
from node.services import SubmitOutcome
from tests.api.in_process_node import InProcessNode
from tests.spec.ledger_world import World

MSGPACK = {"Content-Type": "application/msgpack"}
WINDOW_S = 0.05
"""How long an admission waits for the others to join its window before it gives up
(only one at a time ever does that, on the old code: it then fails the test slowly)."""
BUG = b"raise"
"""An item whose admission raises, as a bug in the node would."""


class ProofWindowNode(InProcessNode):
    """Each admission waits for a proof window, as a tx with a range proof does on the
    runtime; the window closes once ``window_txs`` admissions are in it. Counts how
    many are in flight at once, and answers in the reverse of the order it was asked."""

    def __init__(self, world: World, store: Store, *, window_txs: int) -> None:
        super().__init__(world, store)
        self.window_txs = window_txs
        self.in_flight = 0
        self.most_in_flight = 0
        self.started: list[bytes] = []
        self._window_full = asyncio.Event()

    async def submit(self, tx_bytes: bytes) -> SubmitOutcome:
        position = len(self.started)
        self.started.append(tx_bytes)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.in_flight == self.window_txs:
            self._window_full.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WINDOW_S):
                await self._window_full.wait()
        try:
            if tx_bytes == BUG:
                raise RuntimeError("a bug in admission")
            outcome = await super().submit(tx_bytes)
            for _ in range(self.window_txs - position):  # the first asked answers last
                await asyncio.sleep(0)
            return outcome
        finally:
            self.in_flight -= 1


def attests(world: World) -> list[BuiltTx]:
    """Two txs that do not depend on each other: one attest from each member bank."""
    return [
        build_attest(bank.identity, world.chain_id, "kyc", bytes([n]) * 32, nonce=1)
        for n, bank in enumerate((world.bank_a, world.bank_b), start=1)
    ]


async def post_batch(node: InProcessNode, txs: list[bytes]) -> tuple[int, dict[str, object], str]:
    async with TestClient(TestServer(create_app(node))) as client:
        response = await client.post("/v1/txs:batch", data=msgpack.packb(txs), headers=MSGPACK)
        return response.status, await response.json(), response.headers["X-Request-Id"]


async def test_a_batchs_admissions_are_in_flight_together_and_answer_in_order() -> None:
    world = World()
    a, b = attests(world)
    txs = [a.encode(), b"\x00", b.encode(), a.encode()]  # a duplicate last
    node = ProofWindowNode(world, world.new_store(), window_txs=len(txs))
    status, body, _ = await post_batch(node, txs)
    assert node.most_in_flight == len(txs)  # one window, not one each
    assert node.started == txs  # begun in the order sent
    assert status == 200
    results = body["results"]
    assert isinstance(results, list)
    assert results[0] == {"id": a.tx_id.hex(), "status": "pending"}
    assert results[1]["error"]["code"] == "MALFORMED"
    assert results[2] == {"id": b.tx_id.hex(), "status": "pending"}
    assert results[3] == {"id": a.tx_id.hex(), "status": "pending"}


async def test_an_item_whose_admission_raises_is_its_own_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The other items are neither cancelled nor lost, and the batch is not a 500."""
    world = World()
    a, b = attests(world)
    txs = [a.encode(), BUG, b.encode()]
    node = ProofWindowNode(world, world.new_store(), window_txs=len(txs))
    with caplog.at_level(logging.ERROR, logger="veil"):
        status, body, request_id = await post_batch(node, txs)
    assert status == 200
    results = body["results"]
    assert isinstance(results, list)
    assert [r.get("status") for r in results] == ["pending", None, "pending"]
    assert results[1] == {
        "error": {"code": "INTERNAL", "message": f"internal error, request id {request_id}"}
    }
    assert set(node.pending_txs) == {a.tx_id, b.tx_id}
    [record] = [r for r in caplog.records if r.name.startswith("veil")]
    assert record.getMessage() == "internal error" and record.exc_info is not None


async def test_a_busy_item_names_its_wait_in_milliseconds() -> None:
    """A batch answers 200 whatever its items, so there is no ``Retry-After`` header
    for a busy item: its error carries the wait (``retry_after_ms``), which the SDK
    reads into ``BatchItem``."""
    world = World()
    first, second = (
        build_attest(world.bank_a.identity, world.chain_id, "kyc", bytes([n]) * 32, nonce=n)
        for n in (1, 2)
    )
    node = InProcessNode(world, world.new_store())
    node.max_pending_per_signer = 1
    status, body, _ = await post_batch(node, [first.encode(), second.encode()])
    assert status == 200
    results = body["results"]
    assert isinstance(results, list)
    assert results[0] == {"id": first.tx_id.hex(), "status": "pending"}
    assert results[1]["error"]["code"] == "RATE_LIMITED"
    assert results[1]["error"]["retry_after_ms"] == 1_500
    [_, item] = (BatchItem.from_json(result) for result in results)
    assert (item.error_code, item.retry_after_ms) == ("RATE_LIMITED", 1_500)
