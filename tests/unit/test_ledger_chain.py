"""``open_chain``: a data directory belongs to one chain, and the node refuses another's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ledger.batch import BlockMetadata
from ledger.chain import ChainMismatchError, chain_tip, open_chain
from ledger.leveldb_store import LevelDBStore
from ledger.store import MemoryStore
from tests.spec.ledger_world import World


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def test_an_empty_store_gets_the_genesis_and_reopens_on_the_same_chain(
    world: World, tmp_path: Path
) -> None:
    path = tmp_path / "db"
    with LevelDBStore(path) as store:
        tip = open_chain(store, world.genesis)
        assert (tip.height, tip.block_hash) == (0, world.chain_id)
        assert store.metadata_at(0) == BlockMetadata(world.genesis.genesis_time_ms, 0)
        assert store.rejected_at(0) == () and store.certificate_at(0) == b""
        world.commit(store, [])  # type: ignore[arg-type]
    with LevelDBStore(path) as store:
        assert open_chain(store, world.genesis) == chain_tip(store)
        assert store.height() == 1


def test_a_store_of_another_chain_is_refused_naming_both_chain_ids(
    world: World, tmp_path: Path
) -> None:
    other = dataclasses.replace(world.genesis, chain_name="another-consortium")
    with LevelDBStore(tmp_path / "db") as store:
        open_chain(store, other)
    with LevelDBStore(tmp_path / "db") as store:
        with pytest.raises(ChainMismatchError) as info:
            open_chain(store, world.genesis)
        assert other.chain_id.hex() in str(info.value)
        assert world.chain_id.hex() in str(info.value)
        assert store.height() == 0  # nothing written


def test_a_memory_store_is_checked_the_same_way(world: World) -> None:
    store = MemoryStore()
    open_chain(store, world.genesis)
    other = dataclasses.replace(world.genesis, genesis_time_ms=1)
    with pytest.raises(ChainMismatchError, match=other.chain_id.hex()):
        open_chain(store, other)
