"""The chaos tool's verdicts, from what the nodes serve: forks, lost commits, convergence.

- **No fork:** every node's block hash at every height it has is the same.
- **No lost commit:** every tx some node reported committed (the watcher saw it in
  a block, or a node's chain holds it) is in every node's chain.
- **Convergence:** once the faults are healed and the load stopped, every node
  reaches the same height and state root within ``CONVERGE_TIMEOUT_S``.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from client.api_types import Block
from client.sdk import Client, VeilApiError
from devnet.chaos_reads import POLL_TIMEOUT_S, Reads

CONVERGE_TIMEOUT_S = 90.0


@dataclass(frozen=True, slots=True)
class NodeChain:
    index: int
    hashes: tuple[bytes, ...]
    """Block hash at heights 1, 2, ..."""
    tx_ids: frozenset[bytes]
    state_root: bytes


def read_chain(reads: Reads, index: int, up_to_height: int | None = None) -> NodeChain:
    """Node ``index``'s blocks from height 1 to ``up_to_height`` (default: its tip); each
    read retried within ``reads``' budget, ``NoAnswerError`` when the node stays silent."""
    status = reads.from_node(index, "GET /v1/status", lambda c: c.status())
    top = status.height if up_to_height is None else min(up_to_height, status.height)
    hashes: list[bytes] = []
    tx_ids: set[bytes] = set()
    for height in range(1, top + 1):
        block = reads.from_node(
            index, f"GET /v1/blocks/{height}", functools.partial(_block, height)
        )
        hashes.append(block.hash)
        tx_ids.update(tx.id for tx in block.txs)
    return NodeChain(index, tuple(hashes), frozenset(tx_ids), status.state_root)


def _block(height: int, client: Client) -> Block:
    return client.block(height)


def fork_heights(chains: list[NodeChain]) -> list[int]:
    """Heights at which two nodes hold different blocks."""
    forks = []
    for height in range(1, max((len(c.hashes) for c in chains), default=0) + 1):
        hashes = {c.hashes[height - 1] for c in chains if len(c.hashes) >= height}
        if len(hashes) > 1:
            forks.append(height)
    return forks


def lost_commits(chains: list[NodeChain], reported: set[bytes]) -> set[bytes]:
    """Txs reported committed somewhere that some node's chain lacks."""
    everywhere = frozenset.intersection(*(c.tx_ids for c in chains)) if chains else frozenset()
    return (reported | set().union(*(c.tx_ids for c in chains))) - everywhere


def wait_converged(
    reads: Reads, nodes: list[int], timeout_s: float = CONVERGE_TIMEOUT_S
) -> int | None:
    """The height at which ``nodes`` settle: one height and state root, empty mempools,
    twice in a row (None: not within the timeout). The load must be stopped."""
    started = time.monotonic()
    previous: tuple[int, bytes] | None = None
    while time.monotonic() - started < timeout_s:
        try:
            # Every node runs by now: a full attempt each (at load 50 one took over 3 s).
            statuses = [reads.client(i).status() for i in nodes]
        except (VeilApiError, OSError):
            statuses = []
        states = {(s.height, s.state_root) for s in statuses}
        idle = bool(statuses) and all(s.mempool_txs == 0 for s in statuses)
        state = next(iter(states)) if len(states) == 1 and idle else None
        if state is not None and state == previous:
            return state[0]
        previous = state
        time.sleep(0.5)
    return None


def heights(reads: Reads, nodes: list[int]) -> dict[int, int]:
    """The height of each of ``nodes`` that answers (one quick try each: callers poll)."""
    found = {}
    for index in nodes:
        try:
            found[index] = reads.client(index, POLL_TIMEOUT_S).status().height
        except (VeilApiError, OSError):
            continue
    return found


def wait_progress(reads: Reads, nodes: list[int], above: int, timeout_s: float) -> float | None:
    """Seconds until every one of ``nodes`` has a block above height ``above``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        found = heights(reads, nodes)
        if len(found) == len(nodes) and min(found.values()) > above:
            return time.monotonic() - started
        time.sleep(0.1)
    return None
