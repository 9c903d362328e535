"""The store's check of its tip block at open, with the ledger's block format.

Opening with ``block_claims=stored_block_claim`` must accept a real chain at
any height (genesis included) and refuse a tip block that hashes to another
hash, fixes another state root or names another parent than the store holds,
even when the tip record and indexes were made to agree with it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ledger.apply import apply_block, commit_applied
from ledger.block import Block, block_hash, decode_block
from ledger.chain import commit_genesis
from ledger.codec import encode_value
from ledger.leveldb_store import LevelDBStore
from ledger.store import (
    BLOCK_HASH_PREFIX,
    BLOCK_PREFIX,
    CERTIFICATE_PREFIX,
    HEIGHT_BY_HASH_PREFIX,
    TIP_KEY,
    StoreCorruptError,
)
from ledger.stored_block import stored_block_claim
from tests.spec.ledger_world import USD, World, metadata_of


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def write_chain(world: World, path: Path, blocks: int) -> None:
    with LevelDBStore(path) as store:
        commit_genesis(store, world.genesis)
        for _ in range(blocks):
            issue = world.issue(world.bank_a, USD, [world.alice.plan(5)])
            block = world.propose(store, [issue])
            result = apply_block(store, block, world.genesis)
            commit_applied(store, block, result, certificate=b"cert", metadata=metadata_of(block))


def test_a_real_chain_opens_at_genesis_and_later(world: World, tmp_path: Path) -> None:
    write_chain(world, tmp_path / "genesis-only", 0)
    with LevelDBStore(tmp_path / "genesis-only", block_claims=stored_block_claim) as store:
        assert store.height() == 0 and store.tip_hash() == world.chain_id
    write_chain(world, tmp_path / "two", 2)
    with LevelDBStore(tmp_path / "two", block_claims=stored_block_claim) as store:
        assert store.height() == 2


def forge_tip(path: Path, change: dict[str, bytes]) -> None:
    """Replace the tip block by one with ``change`` in its header, and make the tip
    record and the hash indexes agree with the forgery (as a careful attacker or a
    very unlucky disk would): only the block's own bytes can tell."""
    with LevelDBStore(path) as store:
        height, root = store.height(), store.state_root()
        old_hash = store.tip_hash()
        raw = store.block_at(height)
        assert raw is not None and old_hash is not None
        block = decode_block(raw)
        chain_id = store.block_hash_at(0)
        assert chain_id is not None
        header = dataclasses.replace(block.header, **change)
        forged = Block(header, block.txs)
        forged_hash = block_hash(header, chain_id)
        store.backend.write(
            [
                (BLOCK_PREFIX + u64(height), forged.encode()),
                (BLOCK_HASH_PREFIX + u64(height), forged_hash),
                (HEIGHT_BY_HASH_PREFIX + old_hash, None),
                (HEIGHT_BY_HASH_PREFIX + forged_hash, u64(height)),
                (TIP_KEY, encode_value((height, forged_hash, root))),
            ]
        )


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"state_root": bytes(range(32))}, "another state root"),
        ({"prev_hash": bytes(32)}, "as its parent"),
    ],
)
def test_a_forged_tip_block_is_refused(
    world: World, tmp_path: Path, change: dict[str, bytes], refusal: str
) -> None:
    path = tmp_path / "db"
    write_chain(world, path, 2)
    forge_tip(path, change)
    # the generic checks cannot see it: tip record, indexes and tree agree
    with LevelDBStore(path) as store:
        assert store.height() == 2
    with pytest.raises(StoreCorruptError, match=refusal):
        LevelDBStore(path, block_claims=stored_block_claim)


def test_a_tip_block_that_hashes_elsewhere_is_refused(world: World, tmp_path: Path) -> None:
    path = tmp_path / "db"
    write_chain(world, path, 1)
    with LevelDBStore(path) as store:
        raw = store.block_at(1)
        assert raw is not None
        block = decode_block(raw)
        later = dataclasses.replace(block.header, timestamp_ms=block.header.timestamp_ms + 1)
        store.backend.write([(BLOCK_PREFIX + u64(1), Block(later, block.txs).encode())])
    with pytest.raises(StoreCorruptError, match="does not hash to the tip hash"):
        LevelDBStore(path, block_claims=stored_block_claim)


def test_tip_bytes_that_are_no_block_are_refused(world: World, tmp_path: Path) -> None:
    path = tmp_path / "db"
    write_chain(world, path, 1)
    with LevelDBStore(path) as store:
        store.backend.write([(BLOCK_PREFIX + u64(1), b"\x93not a block")])
    with pytest.raises(StoreCorruptError, match="does not decode"):
        LevelDBStore(path, block_claims=stored_block_claim)


def test_a_damaged_genesis_record_is_refused(world: World, tmp_path: Path) -> None:
    path = tmp_path / "db"
    write_chain(world, path, 0)
    with LevelDBStore(path) as store:
        genesis = world.genesis
        other = dataclasses.replace(genesis, genesis_time_ms=genesis.genesis_time_ms + 1)
        store.backend.write([(BLOCK_PREFIX + u64(0), other.encode())])
    with pytest.raises(StoreCorruptError, match="does not hash to the tip hash"):
        LevelDBStore(path, block_claims=stored_block_claim)


@pytest.mark.parametrize("table", [BLOCK_PREFIX, CERTIFICATE_PREFIX])
def test_a_missing_tip_block_or_certificate_is_refused_without_claims(
    world: World, tmp_path: Path, table: bytes
) -> None:
    path = tmp_path / "db"
    write_chain(world, path, 1)
    with LevelDBStore(path) as store:
        store.backend.write([(table + u64(1), None)])
    with pytest.raises(StoreCorruptError, match="is missing"):
        LevelDBStore(path)


def test_a_height_index_that_misses_the_tip_is_refused(world: World, tmp_path: Path) -> None:
    path = tmp_path / "db"
    write_chain(world, path, 1)
    with LevelDBStore(path) as store:
        tip = store.tip_hash()
        assert tip is not None
        store.backend.write([(HEIGHT_BY_HASH_PREFIX + tip, u64(0))])
    with pytest.raises(StoreCorruptError, match="height index"):
        LevelDBStore(path)
