"""What a stored block's bytes claim about it, for the store's check of its tip at open.

The store keeps block bytes opaque (``ledger.store``); this module knows the
ledger's formats. Height 0 holds the genesis record, whose hash is the chain
id and whose state is ``genesis_delta``; every later height holds a
``Block``, whose hash is ``block_hash(header, chain_id)`` and whose header
fixes the parent hash and the state root after it. Pass
``stored_block_claim`` as ``block_claims`` when opening a node's store, so a
damaged or substituted tip block is refused before anything is built on it.
"""

from __future__ import annotations

from ledger.block import block_hash, decode_block
from ledger.codec import DecodeError
from ledger.genesis import Genesis
from ledger.reasons import TxRejected
from ledger.rules import genesis_delta
from ledger.state_root import compute_root
from ledger.store import BlockClaim


def stored_block_claim(height: int, block_bytes: bytes, chain_id: bytes) -> BlockClaim:
    """The hash, post-state root and parent hash ``block_bytes`` fix at ``height``.

    Raises ``ValueError`` when the bytes are not a genesis (height 0) or a block of
    that height. The genesis root is recomputed from its state (a few hundred
    keys at most); a block's is read from its header.
    """
    if height == 0:
        try:
            genesis = Genesis.decode(block_bytes)
        except (DecodeError, ValueError) as exc:
            raise ValueError(f"height 0 holds no genesis record: {exc}") from exc
        state = {key: value for key, value in genesis_delta(genesis).items() if value is not None}
        root = compute_root(state)
        return BlockClaim(genesis.chain_id, root, None)
    try:
        block = decode_block(block_bytes)
    except TxRejected as exc:
        raise ValueError(str(exc)) from exc
    header = block.header
    if header.height != height:
        raise ValueError(f"the block at height {height} says it is at {header.height}")
    return BlockClaim(block_hash(header, chain_id), header.state_root, header.prev_hash)
