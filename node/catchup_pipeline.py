"""Catch-up's pipeline: the next chunk is prepared while the worker applies this one.

Both catch-up paths of the runtime (at start-up, and the core's
``RequestStateTransfer``) run ``run_pipelined``: while the worker thread
re-executes chunk k, chunk k+1 is fetched, its certificates are checked and
its output proofs verified in the proof pool (another process), so the pool
and the worker run at once instead of alternating (issue 9). At most one
prepared chunk waits beside the one being applied.

Where chunks come from:

- ``PlanChunks``: a ``CatchUp`` plan to a known height (the stable
  checkpoint the core named), several peers asked in parallel and kept
  asked while chunks execute, replies bounded in bytes, a peer that sends a
  bad block excluded (its faults stay in the plan);
- ``PeerChunks``: from a height on with no target, each chunk asked of the
  first peer that has it (the start-up catch-up, and the live path once its
  plan is done: the network went on committing while it caught up).

Every block either hands out passed ``verify_certified_block``; the caller
applies chunks in height order (``LedgerApp.apply_certified``, which refuses
a block that does not re-execute to the header the peer sent: the runtime
then fetches it again from another peer).
"""

from __future__ import annotations

import asyncio
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from consensus.certificate import Verify
from consensus.quorum import weak_quorum_size
from ledger.genesis import Genesis
from node.catchup import (
    CatchUp,
    FetchRequest,
    PeerFailures,
    VerifiedBlock,
    verify_certified_block,
)

Fetch = Callable[[FetchRequest], Awaitable[list[bytes] | str]]
"""Blocks a peer sent for a request (a prefix of its range), or why it could not answer."""
PrepareChunk = Callable[[], Awaitable[list[VerifiedBlock]]]
ApplyChunk = Callable[[Sequence[VerifiedBlock]], Awaitable[bool]]


async def run_pipelined(
    prepare: PrepareChunk, apply: ApplyChunk, stopped: Callable[[], bool]
) -> None:
    """Apply the chunks ``prepare`` returns, in order, until it returns none, ``apply``
    says the node may not go on, or ``stopped()``. Chunk k+1 is being prepared
    while ``apply`` runs on chunk k; ``prepare`` is never called twice at once."""
    ahead = asyncio.ensure_future(prepare())
    try:
        while not stopped():
            blocks = await ahead
            if not blocks:
                return
            ahead = asyncio.ensure_future(prepare())
            if not await apply(blocks):
                return
    finally:
        ahead.cancel()


@dataclass(slots=True)
class PlanChunks:
    """Chunks of a ``CatchUp`` plan. Its requests stay in flight across chunks (up to
    the plan's ``max_parallel``, to several peers): a chunk is handed out as soon as
    the blocks after the last one handed out are there, not once a whole round of
    requests has answered, so the first blocks execute while the rest arrive."""

    plan: CatchUp
    fetch: Fetch
    stopped: Callable[[], bool]
    stalled: bool = False
    """Every peer sent a bad block: nobody is left to ask."""
    _in_flight: dict[asyncio.Future[list[bytes] | str], FetchRequest] = field(default_factory=dict)
    _closed: bool = False

    async def next_chunk(self) -> list[VerifiedBlock]:
        """The next verified blocks of the plan; empty when it is done, stalled or closed."""
        plan = self.plan
        while not plan.done and not self.stopped() and not self._closed:
            for request in plan.next_requests():
                self._in_flight[asyncio.ensure_future(self.fetch(request))] = request
            if not self._in_flight:
                self.stalled = True
                return []
            answered, _ = await asyncio.wait(self._in_flight, return_when=FIRST_COMPLETED)
            for future in answered:
                if future not in self._in_flight:  # cancelled by close() while this call waited
                    continue
                request = self._in_flight.pop(future)
                reply = future.result()
                if isinstance(reply, str):
                    plan.on_failure(request, reply)
                else:
                    plan.on_reply(request, reply)
            ready = plan.ready()
            if ready:
                return ready
        return []

    def close(self) -> None:
        """Cancel the requests still in flight (the catch-up ended or was cancelled);
        a ``next_chunk`` still waiting then returns empty and asks nobody again."""
        self._closed = True
        for future in self._in_flight:
            future.cancel()
        self._in_flight.clear()


@dataclass(slots=True)
class PeerChunks:
    """Chunks from ``next_height`` on, with no target: each of up to ``chunk_blocks``
    blocks from the first of ``peers()`` that has any, the peers that failed least
    (``failures``) asked first; once f + 1 peers that have not failed say they have
    no such block (one of them honest), those that have are not asked. One such
    peer used to be enough: a byzantine peer always answering "nothing" then hid
    every peer that had once timed out, for good (a mark clears only on a useful
    reply). A bad block ends its chunk at the block before it and is a fault of
    its peer (``on_fault``).

    Among equally failed peers, each chunk starts one further along ``peers()``
    (``turn``). Why: with a fixed order, a byzantine first peer that answers
    every request at once with one valid block (a prefix, as a peer at its tip
    sends) was asked for every chunk, so a restarted node caught up one block,
    one round trip and one fsync at a time; now it serves one chunk in
    ``len(peers())``, and the others spread the serving."""

    next_height: int
    peers: Callable[[], Sequence[int]]
    fetch: Fetch
    genesis: Genesis
    verify: Verify
    on_fault: Callable[[int, str], None]
    chunk_blocks: int
    max_bytes: int
    failures: PeerFailures = field(default_factory=PeerFailures)
    turn: int = 0

    async def next_chunk(self) -> list[VerifiedBlock]:
        """The next verified blocks; empty when no peer has block ``next_height``."""
        first = self.next_height
        last = first + self.chunk_blocks - 1
        none_from_sound_peers: set[int] = set()
        enough = weak_quorum_size(len(self.genesis.validators))
        peers = list(self.peers())
        if peers:
            start = self.turn % len(peers)
            peers = peers[start:] + peers[:start]
        self.turn += 1
        for peer in self.failures.ranked(peers):
            if len(none_from_sound_peers) >= enough and self.failures.of(peer):
                # An honest peer that has not failed has no such block: a failing one
                # would cost the fetch timeout at the end of every catch-up to say so too.
                break
            reply = await self.fetch(FetchRequest(peer, first, last, self.max_bytes))
            if isinstance(reply, str):
                self.failures.failed(peer)
                continue
            if not reply:  # it has no such block yet: not a failure
                if not self.failures.of(peer):
                    none_from_sound_peers.add(peer)
                continue
            blocks: list[VerifiedBlock] = []
            for offset, data in enumerate(reply[: last - first + 1]):
                checked = verify_certified_block(
                    data, first + offset, self.genesis, self.verify, served_by=peer
                )
                if isinstance(checked, str):
                    self.on_fault(peer, checked)
                    self.failures.failed(peer)  # asked last from now on, as a mute one
                    break
                blocks.append(checked)
            if blocks:
                self.failures.answered(peer)
                self.next_height = blocks[-1].height + 1
                return blocks
        return []


@dataclass(slots=True)
class LiveChunks:
    """The core's state transfer: a plan (``PlanChunks``) to the newest stable
    checkpoint the core knows, a new plan from where the last one ended whenever
    the core has learnt of a newer one, and ``PeerChunks`` beyond the newest.
    The network goes on committing while a node catches up: it used to catch up
    to one checkpoint per request, drain its pipeline and be asked again."""

    handed_out: int
    """The height of the last block handed out (the node's height at the start)."""
    newest_checkpoint: Callable[[], tuple[int, bytes]]
    """The core's stable checkpoint now: its height and state root."""
    new_plan: Callable[[int, int, bytes], CatchUp]
    """A plan from the first height (its ``applied_height``) to a checkpoint."""
    fetch: Fetch
    stopped: Callable[[], bool]
    onward: PeerChunks
    planned: PlanChunks | None = None
    checkpoints: list[tuple[int, bytes]] = field(default_factory=list)
    """Every checkpoint planned to: the state root there must be this one."""
    faults: list[tuple[int, str]] = field(default_factory=list)
    """Faults of the plans done so far (the current plan holds its own)."""
    stalled: bool = False

    async def next_chunk(self) -> list[VerifiedBlock]:
        """The next verified blocks; empty when no peer has more, or a plan stalled."""
        seq, root = self.newest_checkpoint()
        # A new plan once the checkpoint is more than a chunk ahead (its parallel
        # requests pay); within one chunk ``onward`` asks for the same blocks.
        ahead = self.onward.chunk_blocks if self.planned is not None else 0
        if (self.planned is None or self.planned.plan.done) and seq > self.handed_out + ahead:
            self.close()
            self.planned = PlanChunks(
                self.new_plan(self.handed_out, seq, root), self.fetch, self.stopped
            )
            self.checkpoints.append((seq, root))
        planned = self.planned  # close() may retire it while this call waits
        if planned is not None and not planned.plan.done:
            blocks = await planned.next_chunk()
            self.stalled = planned.stalled
        else:
            self.onward.next_height = self.handed_out + 1
            blocks = await self.onward.next_chunk()
        if blocks:
            self.handed_out = blocks[-1].height
        return blocks

    def all_faults(self) -> list[tuple[int, str]]:
        current = [] if self.planned is None else self.planned.plan.faults
        return [*self.faults, *current]

    def close(self) -> None:
        """Retire the current plan: its requests in flight cancelled, its faults kept."""
        if self.planned is not None:
            self.planned.close()
            self.faults.extend(self.planned.plan.faults)
            self.planned = None
