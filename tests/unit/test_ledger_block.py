"""Blocks on a real LevelDB store, block hashes, decoding limits and the proposal clock check."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ledger.apply import apply_block, commit_applied
from ledger.block import (
    MAX_BLOCK_BYTES,
    Block,
    ChainTip,
    block_hash,
    check_proposal_timestamp,
    decode_block,
)
from ledger.chain import chain_tip, commit_genesis
from ledger.leveldb_store import LevelDBStore
from ledger.reasons import BlockRejected, Reason
from ledger.wallet import Wallet
from tests.spec.ledger_world import USD, World, committed_blocks, metadata_of


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def test_blocks_survive_a_reopen_and_the_chain_continues(world: World, tmp_path: Path) -> None:
    path = tmp_path / "db"
    issue = world.issue(world.bank_a, USD, [world.alice.plan(70), world.bob.plan(30)])
    with LevelDBStore(path) as store:
        commit_genesis(store, world.genesis)
        assert store.tip_hash() == world.chain_id and store.height() == 0
        block = world.propose(store, [issue])
        result = apply_block(store, block, world.genesis)
        root = commit_applied(
            store, block, result, certificate=b"certificate", metadata=metadata_of(block)
        )
        assert root == block.header.state_root
        assert store.certificate_at(1) == b"certificate"
        assert store.tx_location(issue.tx_id) == (1, 0)
    with LevelDBStore(path) as store:
        assert store.state_root() == root
        assert chain_tip(store) == ChainTip(1, result.block_hash, block.header.timestamp_ms)
        bob = Wallet(world.bob.identity, world.bob.memo_private)
        for stored in committed_blocks(store):
            bob.scan(stored, world.chain_id)
        assert bob.balances() == {USD: 30}
        pay = bob.pay(
            world.chain_id,
            USD,
            recipient=world.alice.key,
            recipient_memo_key=world.alice.memo_public,
            amount=30,
            auditor_memo_key=world.auditor.memo_public,
        )
        next_block = world.propose(store, [pay])
        assert next_block.header.prev_hash == result.block_hash
        commit_applied(
            store,
            next_block,
            apply_block(store, next_block, world.genesis),
            certificate=b"",
            metadata=metadata_of(next_block),
        )
        # The same block again is now stale.
        with pytest.raises(BlockRejected) as info:
            apply_block(store, next_block, world.genesis)
        assert info.value.reason is Reason.BAD_HEIGHT


def test_block_hash_binds_header_and_chain(world: World) -> None:
    store = world.new_store()
    block = world.propose(store, [])
    header = block.header
    assert block_hash(header, world.chain_id) != block_hash(header, bytes(32))
    later = dataclasses.replace(header, timestamp_ms=header.timestamp_ms + 1)
    assert block_hash(header, world.chain_id) != block_hash(later, world.chain_id)
    assert decode_block(block.encode()) == block


def test_decode_block_refuses_garbage_and_oversize() -> None:
    with pytest.raises(BlockRejected) as info:
        decode_block(b"\x93\x01")
    assert info.value.reason is Reason.MALFORMED
    with pytest.raises(BlockRejected) as info:
        decode_block(b"\x00" * (MAX_BLOCK_BYTES + 1))
    assert info.value.reason is Reason.TOO_LARGE


def test_proposal_timestamp_skew(world: World) -> None:
    store = world.new_store()
    block: Block = world.propose(store, [])
    tip = chain_tip(store)
    params = world.genesis.params
    now = block.header.timestamp_ms
    check_proposal_timestamp(block.header, tip, now, params)
    ahead = dataclasses.replace(block.header, timestamp_ms=now + params.max_timestamp_skew_ms + 1)
    with pytest.raises(BlockRejected) as info:
        check_proposal_timestamp(ahead, tip, now, params)
    assert info.value.reason is Reason.BAD_TIMESTAMP
    check_proposal_timestamp(ahead, tip, now + 1, params)
    behind = dataclasses.replace(block.header, timestamp_ms=tip.timestamp_ms - 1)
    with pytest.raises(BlockRejected):
        check_proposal_timestamp(behind, tip, now, params)


def test_the_skew_is_measured_from_the_local_clock_not_the_parent(world: World) -> None:
    """``max_timestamp_skew_ms`` bounds the lead over the voter's clock: a block long
    after its parent is fine, one equal to its parent too (as its docstring says)."""
    store = world.new_store()
    block: Block = world.propose(store, [])
    tip = chain_tip(store)
    params = world.genesis.params
    much_later = tip.timestamp_ms + 100 * params.max_timestamp_skew_ms
    late = dataclasses.replace(block.header, timestamp_ms=much_later)
    check_proposal_timestamp(late, tip, much_later, params)
    same = dataclasses.replace(block.header, timestamp_ms=tip.timestamp_ms)
    check_proposal_timestamp(same, tip, tip.timestamp_ms, params)
    with pytest.raises(BlockRejected, match="ahead"):
        check_proposal_timestamp(late, tip, tip.timestamp_ms, params)
