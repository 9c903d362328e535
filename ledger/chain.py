"""The chain a store holds: its tip, its genesis, and refusing another chain's data.

Height 0 of a store is the genesis: the genesis record as the block bytes,
its chain id as the block hash, the genesis state, no certificate, and
metadata ``(genesis_time_ms, view 0)``. So the hash stored at height 0 names
the chain a data directory belongs to, which is what ``open_chain`` checks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from ledger.batch import BlockMetadata
from ledger.block import ChainTip
from ledger.genesis import Genesis
from ledger.rules import genesis_delta, get_clock
from ledger.store import BlockWrite, Store, TxLocation


class ChainState(Protocol):
    """What the rules read: the committed state and tip. ``ledger.store.Store`` is one."""

    def get_state(self, key: bytes) -> bytes | None: ...
    def iter_state(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]: ...
    def preview_state_root(self, delta: Mapping[bytes, bytes | None]) -> bytes: ...
    def height(self) -> int: ...
    def tip_hash(self) -> bytes | None: ...
    def tx_location(self, tx_id: bytes) -> TxLocation | None: ...


class ChainMismatchError(ValueError):
    """The data directory holds another chain than the genesis the node was given."""


def chain_tip(state: ChainState) -> ChainTip:
    """The tip a new block must extend (height 0 is the genesis, hash = chain id)."""
    tip_hash = state.tip_hash()
    clock = get_clock(state)
    if tip_hash is None or clock is None:
        raise LookupError("the store holds no genesis: call commit_genesis first")
    return ChainTip(state.height(), tip_hash, clock.timestamp_ms)


def commit_genesis(store: Store, genesis: Genesis) -> bytes:
    """Commit height 0: the genesis record as the block, its state, the chain id as hash."""
    return store.commit_block(
        BlockWrite(
            height=0,
            block_hash=genesis.chain_id,
            block_bytes=genesis.encode(),
            certificate_bytes=b"",
            metadata=BlockMetadata(genesis.genesis_time_ms, 0),
            rejected=(),
            delta=genesis_delta(genesis),
            tx_ids=(),
        )
    )


def open_chain(store: Store, genesis: Genesis) -> ChainTip:
    """The tip of ``genesis``'s chain in ``store``, committing the genesis if it is empty.

    Raises ``ChainMismatchError`` naming both chain ids if the store holds
    another chain: a node must never extend, or serve, another chain's blocks
    as its own.
    """
    if store.height() < 0:
        commit_genesis(store, genesis)
    stored = store.block_hash_at(0)
    if stored != genesis.chain_id:
        found = "nothing" if stored is None else stored.hex()
        raise ChainMismatchError(
            f"the data directory holds chain {found}, the genesis given is chain "
            f"{genesis.chain_id.hex()}: use the data directory of this chain or a fresh one"
        )
    return chain_tip(store)
