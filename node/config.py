"""``replica_config_from_genesis``: the consensus core's config, derived from the genesis.

Sans-I/O: no sockets, clocks or randomness here (a test checks the imports),
so the node and the tests derive the very same config from the same genesis.

This is the only place milliseconds become ticks. The runtime's clock drives
the core with one ``Tick`` every ``tick_ms``; a timeout of ``t`` ms is
``ceil(t / tick_ms)`` ticks, at least one, so a timeout never fires earlier
than the genesis says (it may fire up to one tick later).

What is taken from the genesis, and why:

* ``validators`` in genesis order: the replica id is an index into them, and
  the primary of view ``v`` is ``validators[v % n]`` for the core and for the
  ledger's block headers alike (``ledger.block.primary_for_view``);
* checkpoint interval and watermark window (``check_genesis`` already refused
  what ``ReplicaConfig`` would);
* the view-change timeout, and its back-off cap at
  ``VIEW_CHANGE_BACKOFF_FACTOR`` times it;
* ``max_batch_size = max_block_txs`` and ``max_request_bytes = max_tx_bytes``,
  so a batch consensus accepts never has more txs than a block may hold
  (``execute_batch`` would reject the excess as ``TOO_MANY_TXS``);
* ``genesis_state_root``: the ledger's state root at height 0, the root every
  replica's checkpoint 0 stands for;
* the committed-request-id window: ``REQUEST_ID_WINDOW_HEIGHTS`` or the
  watermark window if longer.

``max_batch_bytes`` stays at the core's default (8 MiB): below the ledger's
``MAX_BLOCK_BYTES`` (a batch's bytes count every tx plus its request id, so its
block is smaller), and small enough that ``ReplicaConfig`` can prove every
message and WAL record fits the wire.

``request_timeout_ms`` is not mapped: the core's request deadline (issue 8
§1.2, issue 9's fair order) counts in the view-change timeout, with the same
back-off, from when a request became the oldest pending one or a request
waited for was last served (docs/consensus.md, "Timer rules").
"""

from __future__ import annotations

from typing import Final

from consensus.config import ReplicaConfig
from ledger.genesis import Genesis
from ledger.rules import genesis_delta
from ledger.state_root import compute_root

VIEW_CHANGE_BACKOFF_FACTOR: Final = 16
"""The view-change timeout doubles per failed view up to this many times the base."""
REQUEST_ID_WINDOW_HEIGHTS: Final = 256
"""Heights for which consensus deduplicates committed request ids, raised to the
watermark window when that is longer (ReplicaConfig requires it). The ledger
refuses an already committed tx id whatever its age (``DUPLICATE_TX``)."""

DEFAULT_BATCH_CUT_MS: Final = 100
"""As primary, propose a batch short of a full block only once its oldest tx has
waited this long (``[node] batch_cut_ms``, the core's ``batch_cut_ticks``). A block
has a fixed cost on every validator (its consensus messages and their signatures,
WAL and store syncs, worker round trips), so below saturation bigger blocks leave
more CPU for txs; at saturation txs wait for a free slot longer than the cut, and
a freed slot is filled at once (docs/performance.md, "The primary's batch cut").
A lone tx on a quiet chain waits up to a tick more."""


class NodeConfigError(ValueError):
    """The node's own settings do not fit the genesis (a key that is no validator...)."""


def ticks_from_ms(duration_ms: int, tick_ms: int) -> int:
    """``ceil(duration_ms / tick_ms)``, at least 1: never earlier than asked."""
    if isinstance(tick_ms, bool) or not isinstance(tick_ms, int) or tick_ms < 1:
        raise NodeConfigError(f"tick_ms must be a positive int, got {tick_ms!r}")
    if isinstance(duration_ms, bool) or not isinstance(duration_ms, int) or duration_ms < 0:
        raise NodeConfigError(f"a duration is a non-negative int of ms, got {duration_ms!r}")
    return max(1, -(-duration_ms // tick_ms))


def genesis_state_root(genesis: Genesis) -> bytes:
    """The ledger's state root at height 0 (what ``commit_genesis`` stores)."""
    delta = genesis_delta(genesis)
    return compute_root({key: value for key, value in delta.items() if value is not None})


def replica_config_from_genesis(
    genesis: Genesis,
    replica_key: bytes,
    *,
    tick_ms: int,
    max_inflight_batches: int | None = None,
    batch_cut_ms: int = 0,
) -> ReplicaConfig:
    """The ``ReplicaConfig`` of the validator whose ed25519 public key is ``replica_key``.

    Raises ``NodeConfigError`` if the key is not one of the genesis validators
    or ``tick_ms`` is not a positive int.
    """
    validators = tuple(v.public_key for v in genesis.validators)
    if replica_key not in validators:
        shown = replica_key.hex() if isinstance(replica_key, bytes) else repr(replica_key)
        raise NodeConfigError(f"key {shown} is not a validator of chain {genesis.chain_id.hex()}")
    params = genesis.params
    view_change_ticks = ticks_from_ms(params.view_change_timeout_ms, tick_ms)
    return ReplicaConfig(
        chain_id=genesis.chain_id,
        validators=validators,
        replica_id=validators.index(replica_key),
        checkpoint_interval=params.checkpoint_interval_blocks,
        watermark_window=params.watermark_window_blocks,
        view_change_timeout_ticks=view_change_ticks,
        max_view_change_timeout_ticks=VIEW_CHANGE_BACKOFF_FACTOR * view_change_ticks,
        max_batch_size=params.max_block_txs,
        max_request_bytes=params.max_tx_bytes,
        genesis_state_root=genesis_state_root(genesis),
        request_id_window_heights=max(REQUEST_ID_WINDOW_HEIGHTS, params.watermark_window_blocks),
        max_inflight_batches=max_inflight_batches,
        batch_cut_ticks=ticks_from_ms(batch_cut_ms, tick_ms) if batch_cut_ms else 0,
    )
