"""GET /v1/outputs: a page costs what the page holds, not what the owner holds.

The handler runs on the event loop. Before, every page read and sorted the
owner's whole index (100k outputs: ~60 ms of LevelDB per page, even with
limit=1, so paging through was quadratic) and decoded the whole block once per
output on the page (1000 outputs of one 1.3 MB block: ~2.3 s). The work is
counted here, not timed: owner-index entries read and blocks decoded per page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp.test_utils import TestClient, TestServer

import node.api.outputs as outputs_module
from ledger.block import Block, decode_block
from ledger.store import OWNER_PREFIX, BackendReader, Store, StoreSnapshot
from node.api import create_app
from tests.api.in_process_node import InProcessNode
from tests.spec.ledger_world import USD, World

FIRST_BLOCK_OUTPUTS = 16  # MAX_OUTPUTS: one issue, all to alice
SECOND_BLOCK_OUTPUTS = 2
OUTPUTS = FIRST_BLOCK_OUTPUTS + SECOND_BLOCK_OUTPUTS


@dataclass
class Counts:
    owner_entries: int = 0
    """Owner-index entries the store's iterators yielded."""
    decoded_heights: list[int] = field(default_factory=list)


class CountingReads:
    def __init__(self, inner: BackendReader, counts: Counts) -> None:
        self.inner = inner
        self.counts = counts

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(key)

    def iterate(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        for item in self.inner.iterate(prefix, start):
            if item[0].startswith(OWNER_PREFIX):
                self.counts.owner_entries += 1
            yield item


class CountingNode(InProcessNode):
    """Serves the API a snapshot of its store, as the runtime does, over counted reads."""

    counts = Counts()

    @property
    def store(self) -> Store:
        inner = self._store
        reads = CountingReads(inner.backend.snapshot(), self.counts)  # type: ignore[attr-defined]
        snapshot = StoreSnapshot(
            reads, inner.height(), inner.tip_hash(), inner.state_root(), inner.history_floor()
        )
        return snapshot  # type: ignore[return-value]


@pytest.fixture(scope="module")
def node() -> CountingNode:
    """Alice owns 16 outputs in block 1 and 2 in block 2."""
    world = World()
    node = CountingNode(world, world.new_store())
    for count in (FIRST_BLOCK_OUTPUTS, SECOND_BLOCK_OUTPUTS):
        issue = world.issue(world.bank_a, USD, [world.alice.plan(1_000 + i) for i in range(count)])
        outcome = asyncio.run(node.submit(issue.encode()))
        assert type(outcome).__name__ == "Accepted", outcome
        node.commit_pending()
    assert len(node._store.outputs_by_owner(world.alice.key)) == OUTPUTS
    return node


@pytest.fixture
def counts(node: CountingNode, monkeypatch: pytest.MonkeyPatch) -> Counts:
    counts = Counts()
    monkeypatch.setattr(node, "counts", counts)

    def counting_decode(data: bytes) -> Block:
        block = decode_block(data)
        counts.decoded_heights.append(block.header.height)
        return block

    monkeypatch.setattr(outputs_module, "decode_block", counting_decode)
    return counts


async def get_page(node: CountingNode, limit: int, after: str | None = None) -> dict[str, object]:
    params = {"owner": node.world.alice.key.hex(), "limit": str(limit)}
    if after is not None:
        params["after"] = after
    async with TestClient(TestServer(create_app(node))) as client:
        response = await client.get("/v1/outputs", params=params)
        assert response.status == 200
        body: dict[str, object] = await response.json()
    return body


def all_ids(node: CountingNode) -> list[str]:
    return [oid.hex() for oid in sorted(node._store.outputs_by_owner(node.world.alice.key))]


async def test_a_page_of_one_reads_two_index_entries_and_one_block(
    node: CountingNode, counts: Counts
) -> None:
    ids = all_ids(node)
    first = await get_page(node, 1)
    assert [o["id"] for o in first["outputs"]] == ids[:1]  # type: ignore[attr-defined]
    assert first["next_after"] == ids[0]
    # The one output and "is there more": before, all 18 entries.
    assert counts.owner_entries == 2
    assert len(counts.decoded_heights) == 1
    middle = await get_page(node, 1, after=ids[9])
    assert [o["id"] for o in middle["outputs"]] == [ids[10]]  # type: ignore[attr-defined]
    assert counts.owner_entries == 4 and len(counts.decoded_heights) == 2


async def test_a_page_decodes_each_block_once(node: CountingNode, counts: Counts) -> None:
    page = await get_page(node, OUTPUTS)
    outputs = page["outputs"]
    assert isinstance(outputs, list)
    assert [o["id"] for o in outputs] == all_ids(node) and page["next_after"] is None
    assert sorted(o["height"] for o in outputs) == [1] * 16 + [2] * 2
    # 18 outputs in 2 blocks: 2 decodes (before: 18).
    assert sorted(counts.decoded_heights) == [1, 2]
    assert counts.owner_entries == OUTPUTS


async def test_paging_through_reads_each_entry_about_once(
    node: CountingNode, counts: Counts
) -> None:
    limit = 5
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        decoded_before = len(counts.decoded_heights)
        page = await get_page(node, limit, after)
        pages += 1
        outputs = page["outputs"]
        assert isinstance(outputs, list)
        heights = {o["height"] for o in outputs}
        assert len(counts.decoded_heights) - decoded_before == len(heights)
        seen += [o["id"] for o in outputs]
        after = page["next_after"]  # type: ignore[assignment]
        if after is None:
            break
    assert seen == all_ids(node) and pages == 4  # 5 + 5 + 5 + 3
    # Each page reads its own entries and one more: linear, where it was quadratic.
    assert counts.owner_entries == OUTPUTS + pages - 1
