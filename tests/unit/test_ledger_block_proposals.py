"""Block proposals every node can decode, order dependence within a block, and the
same roots on every store."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import apply as apply_module
from ledger import block as block_module
from ledger.apply import apply_block, commit_applied, commit_genesis, propose_block
from ledger.block import BlockHeader, decode_block
from ledger.build import BuiltTx, build_attest
from ledger.leveldb_store import LevelDBStore
from ledger.reasons import BlockRejected, Reason
from ledger.store import KeyValueStore
from tests.spec.ledger_world import GENESIS_TIME_MS, USD, World, raw_block


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def _attests(world: World, count: int) -> list[BuiltTx]:
    return [
        build_attest(
            world.bank_a.identity,
            world.chain_id,
            f"report-{i}",
            bytes([i]) * 32,
            nonce=world.next_nonce(world.bank_a),
        )
        for i in range(count)
    ]


def test_block_overhead_bound_covers_the_largest_header() -> None:
    full = b"\xff" * 32
    biggest = BlockHeader(2**32 - 1, 2**64 - 1, full, full, full, full, 2**64 - 1, 2**64 - 1)
    empty_block = block_module.Block(biggest, ())
    # array(2) + header + an array32 header for the txs, whatever the tx count.
    assert len(empty_block.encode()) - 1 + 5 <= block_module.BLOCK_OVERHEAD_BYTES


def test_proposal_never_exceeds_what_decode_block_accepts(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_block_txs x max_tx_bytes may exceed MAX_BLOCK_BYTES (a legal genesis): the
    primary must stop filling the block at the byte limit, or every backup refuses it
    as TOO_LARGE and every primary after it proposes the same block again."""
    store = world.new_store()
    txs = _attests(world, 12)
    size = len(txs[0].encode())
    limit = block_module.BLOCK_OVERHEAD_BYTES + 5 * size + size // 2  # room for five
    monkeypatch.setattr(block_module, "MAX_BLOCK_BYTES", limit)
    monkeypatch.setattr(apply_module, "MAX_BLOCK_BYTES", limit, raising=False)
    proposal = propose_block(
        store, world.genesis, [t.encode() for t in txs], view=0, timestamp_ms=GENESIS_TIME_MS + 1
    )
    encoded = proposal.block.encode()
    assert len(encoded) <= limit
    assert len(proposal.block.txs) == 5
    assert proposal.rejected == ()  # the rest waits for the next block, it is not invalid
    result = apply_block(store, decode_block(encoded), world.genesis)
    commit_applied(store, proposal.block, result, b"")
    rest = propose_block(
        store,
        world.genesis,
        [t.encode() for t in txs[5:]],
        view=0,
        timestamp_ms=GENESIS_TIME_MS + 2,
    )
    assert len(rest.block.txs) == 5


def test_proposal_rejects_a_tx_no_block_can_hold(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(1)])
    small = _attests(world, 1)[0]
    limit = block_module.BLOCK_OVERHEAD_BYTES + len(small.encode()) + 10
    assert len(issue.encode()) > limit
    monkeypatch.setattr(block_module, "MAX_BLOCK_BYTES", limit)
    monkeypatch.setattr(apply_module, "MAX_BLOCK_BYTES", limit, raising=False)
    proposal = propose_block(
        store,
        world.genesis,
        [issue.encode(), small.encode()],
        view=0,
        timestamp_ms=GENESIS_TIME_MS + 1,
    )
    assert [r.reason for _, r in proposal.rejected] == [Reason.TOO_LARGE]
    assert [t.encode() for t in proposal.block.txs] == [small.encode()]


def test_spending_an_output_before_the_tx_that_creates_it_is_unknown_input(world: World) -> None:
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(10)])
    pay = world.transfer(world.alice, USD, [world.spend(issue, 0)], [world.bob.plan(10)])
    with pytest.raises(BlockRejected) as info:
        apply_block(store, raw_block(world, store, [pay, issue]), world.genesis)
    assert (info.value.reason, info.value.index) == (Reason.UNKNOWN_INPUT, 0)
    # The other order is a valid block (the proposer keeps both).
    world.commit(store, [issue, pay])


def test_the_same_blocks_give_the_same_roots_on_fresh_memory_and_leveldb_stores(
    world: World, tmp_path: Path
) -> None:
    source = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(60), world.alice.plan(40)])
    block_one = world.propose(source, [issue])
    commit_applied(source, block_one, apply_block(source, block_one, world.genesis), b"")
    pay = world.transfer(world.alice, USD, [world.spend(issue, 1)], [world.carol.plan(40)])
    block_two = world.propose(source, [pay, *_attests(world, 2)])
    commit_applied(source, block_two, apply_block(source, block_two, world.genesis), b"")
    stores: list[KeyValueStore] = [world.new_store(), world.new_store()]
    with LevelDBStore(tmp_path / "db") as disk:
        commit_genesis(disk, world.genesis)
        stores.append(disk)
        for block in (block_one, block_two):
            encoded = block.encode()
            for store in stores:
                replayed = decode_block(encoded)
                commit_applied(store, replayed, apply_block(store, replayed, world.genesis), b"")
        for store in stores:
            assert store.state_root() == source.state_root() == block_two.header.state_root
            assert list(store.iter_state()) == list(source.iter_state())
            assert store.verify_state_root() == source.state_root()
