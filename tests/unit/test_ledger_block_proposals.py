"""Executed blocks every node can decode, order dependence within a block, and the
same roots on every store."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from ledger import block as block_module
from ledger import execute as execute_module
from ledger.apply import apply_block, commit_applied
from ledger.block import BlockHeader, decode_block
from ledger.build import BuiltTx, build_attest
from ledger.chain import commit_genesis
from ledger.leveldb_store import LevelDBStore
from ledger.reasons import BlockRejected, Reason
from ledger.store import KeyValueStore
from tests.spec.ledger_world import USD, World, metadata_of, raw_block


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


def test_an_executed_block_never_exceeds_what_decode_block_accepts(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_block_txs x max_tx_bytes may exceed MAX_BLOCK_BYTES (a legal genesis): a batch
    must stop filling its block at the byte limit, or every backup refuses the block as
    TOO_LARGE. The valid txs that do not fit are rejected as BLOCK_FULL, in batch order."""
    store = world.new_store()
    txs = _attests(world, 12)
    size = len(txs[0].encode())
    limit = block_module.BLOCK_OVERHEAD_BYTES + 5 * size + size // 2  # room for five
    monkeypatch.setattr(block_module, "MAX_BLOCK_BYTES", limit)
    monkeypatch.setattr(execute_module, "MAX_BLOCK_BYTES", limit)
    executed = world.execute(store, txs)
    encoded = executed.block.encode()
    assert len(encoded) <= limit
    assert len(executed.block.txs) == 5
    assert [(r.index_in_batch, r.reason) for r in executed.rejected] == [
        (i, Reason.BLOCK_FULL) for i in range(5, 12)
    ]
    assert [r.payload for r in executed.rejected] == [t.encode() for t in txs[5:]]
    result = apply_block(store, decode_block(encoded), world.genesis)
    assert result.state_root == executed.result.state_root


def test_a_smaller_tx_after_a_full_block_still_fits(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(1)])
    small = _attests(world, 1)[0]
    limit = block_module.BLOCK_OVERHEAD_BYTES + len(small.encode()) + 10
    assert len(issue.encode()) > limit
    monkeypatch.setattr(block_module, "MAX_BLOCK_BYTES", limit)
    monkeypatch.setattr(execute_module, "MAX_BLOCK_BYTES", limit)
    executed = world.execute(store, [issue, small])
    assert [(r.index_in_batch, r.reason) for r in executed.rejected] == [(0, Reason.BLOCK_FULL)]
    assert [t.encode() for t in executed.block.txs] == [small.encode()]


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
    commit_applied(
        source,
        block_one,
        apply_block(source, block_one, world.genesis),
        certificate=b"",
        metadata=metadata_of(block_one),
    )
    pay = world.transfer(world.alice, USD, [world.spend(issue, 1)], [world.carol.plan(40)])
    block_two = world.propose(source, [pay, *_attests(world, 2)])
    commit_applied(
        source,
        block_two,
        apply_block(source, block_two, world.genesis),
        certificate=b"",
        metadata=metadata_of(block_two),
    )
    stores: list[KeyValueStore] = [world.new_store(), world.new_store()]
    with LevelDBStore(tmp_path / "db") as disk:
        commit_genesis(disk, world.genesis)
        stores.append(disk)
        for block in (block_one, block_two):
            encoded = block.encode()
            for store in stores:
                replayed = decode_block(encoded)
                commit_applied(
                    store,
                    replayed,
                    apply_block(store, replayed, world.genesis),
                    certificate=b"",
                    metadata=metadata_of(replayed),
                )
        for store in stores:
            assert store.state_root() == source.state_root() == block_two.header.state_root
            assert list(store.iter_state()) == list(source.iter_state())
            assert store.verify_state_root() == source.state_root()


@pytest.mark.parametrize("count", [0, 1, 15, 16, 17])
def test_a_block_spliced_from_its_txs_encodings_is_its_encoding(world: World, count: int) -> None:
    """msgpack's array header changes form past 15 items: both sides of it."""
    txs = tuple(built.tx for built in _attests(world, count))
    header = BlockHeader(1, 7, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, 2, 9)
    spliced = block_module.encode_block_of_encodings(header, [tx.encode() for tx in txs])
    assert spliced == block_module.Block(header, txs).encode()
    assert decode_block(spliced) == block_module.Block(header, txs)


@pytest.mark.parametrize("count", [65_535, 65_536])
def test_the_splice_takes_msgpacks_longer_array_headers_too(count: int) -> None:
    """Past 65,535 items the header is array 32; nil items stand in for txs here."""
    header = BlockHeader(1, 7, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, 2, 9)
    spliced = block_module.encode_block_of_encodings(header, [b"\xc0"] * count)
    assert spliced == msgpack.packb((header.to_value(), (None,) * count))
