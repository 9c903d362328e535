"""The runtime's ``PeerLinks`` over ``node.transport.PeerTransport``, and the inbound pump.

Outbound: consensus messages are encoded with ``consensus.wire`` into
``ConsensusFrame``s, the txs gossiped within one turn of the event loop go
together as one ``TxsFrame`` (a lone one as a ``TxFrame``), and a catch-up fetch
is a ``BlocksRequest`` whose ``BlocksReply`` (matched by peer and first
height; the peer protocol already refuses unsolicited replies) resolves the
waiting ``fetch_blocks``.

Inbound (``pump``): every frame from an authenticated peer goes to the
runtime; a consensus payload that does not decode, or a batch frame, is a
peer fault, counted, never an exception, and quarantines the member
(``PeerTransport.quarantine``): an honest validator never sends one, and
without it a member could keep us decoding junk, frame after frame. Frames a
quarantined member sent earlier are dropped unread. A ``BlocksRequest`` is answered from the store
(``NodeRuntime.blocks_for``: a clamped range, read on the reader thread) in a
task of its own, so the frames behind it do not wait for the reads; its byte
budget is capped at what one reply frame carries. One peer's requests are
served one at a time: a peer that keeps 64 unanswered (the protocol's bound)
gets no more of the reader than one that asks one chunk at a time. The
protocol bounds a connection, so a peer also has at most ``SERVES_PER_PEER``
requests being served across its sessions; more are dropped and counted. The
txs of a ``TxsFrame`` are admitted ``TXS_PER_TURN`` at a time, in order, with
the event loop free between. Batch fetch by digest is not used by this core
yet (consensus branch a1 adds it): such frames are counted and dropped, and
quarantine their sender.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter, defaultdict
from collections.abc import Coroutine
from typing import Any, NamedTuple

from consensus.bounds import wire_limits
from consensus.messages import Message
from consensus.wire import WireError, decode_message, encode_message
from node.peer_frames import (
    MAX_TXS_PER_FRAME,
    BatchReply,
    BatchRequest,
    BlocksReply,
    BlocksRequest,
    ConsensusFrame,
    TxFrame,
    TxsFrame,
)
from node.peer_protocol import MAX_PENDING_REQUESTS
from node.runtime import NodeRuntime
from node.serial_worker import WorkerClosedError
from node.transport import PeerTransport

log = logging.getLogger("veil.node.peers")

GOSSIP_FRAME_BYTES = 1 << 20
"""Gossip sent as soon as this many tx bytes wait: far below a frame's 16 MiB."""

SERVES_PER_PEER = MAX_PENDING_REQUESTS
"""Block requests of one peer being served or waiting their turn. The protocol's
bound is per connection: a peer that reconnects gets fresh slots while its old
sessions' requests still wait. Honest catch-up keeps a few out (``max_parallel``)."""

TXS_PER_TURN = 256
"""Txs of one ``TxsFrame`` admitted before the pump yields to the event loop: a
frame may hold millions, and admission costs microseconds each."""


class TransportLinks:
    def __init__(self, transport: PeerTransport) -> None:
        self.transport = transport
        self._fetches: dict[tuple[int, int], asyncio.Future[list[bytes]]] = {}
        self._gossip: list[bytes] = []
        self._gossip_bytes = 0

    def send(self, to: int, message: Message) -> None:
        self.transport.send(to, ConsensusFrame(encode_message(message)))

    def broadcast(self, message: Message) -> None:
        self.transport.broadcast(ConsensusFrame(encode_message(message)))

    def gossip_tx(self, tx_bytes: bytes) -> None:
        """Queue ``tx_bytes`` for every peer; sent once this turn of the loop ends
        (a client's batch of 256 txs becomes one frame per peer)."""
        if not self._gossip:
            asyncio.get_running_loop().call_soon(self._flush_gossip)
        self._gossip.append(tx_bytes)
        self._gossip_bytes += len(tx_bytes)
        if self._gossip_bytes >= GOSSIP_FRAME_BYTES or len(self._gossip) >= MAX_TXS_PER_FRAME:
            self._flush_gossip()  # the count holds by arithmetic today; this keeps it so

    def _flush_gossip(self) -> None:
        txs, self._gossip, self._gossip_bytes = self._gossip, [], 0
        if len(txs) == 1:
            self.transport.broadcast(TxFrame(txs[0]))
        elif txs:
            self.transport.broadcast(TxsFrame(tuple(txs)))

    def connected(self, peer: int) -> bool:
        return peer in self.transport.connected_peers()

    def quarantine(self, peer: int, reason: str) -> None:
        self.transport.quarantine(peer, reason)

    async def fetch_blocks(
        self, peer: int, first_height: int, last_height: int, max_bytes: int
    ) -> list[bytes]:
        if peer not in self.transport.connected_peers():
            raise ConnectionError(f"validator {peer} is not connected")
        key = (peer, first_height)
        previous = self._fetches.get(key)
        if previous is not None and not previous.done():
            return await asyncio.shield(previous)
        future: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
        self._fetches[key] = future
        try:
            self.transport.request_blocks(peer, first_height, last_height, max_bytes)
            return await future
        finally:
            if self._fetches.get(key) is future:
                del self._fetches[key]

    def resolve_blocks(self, peer: int, reply: BlocksReply) -> None:
        future = self._fetches.get((peer, reply.first_height))
        if future is not None and not future.done():
            future.set_result(list(reply.blocks))


async def pump(
    transport: PeerTransport,
    links: TransportLinks,
    runtime: NodeRuntime,
    *,
    serve_blocks: bool = True,
) -> None:
    """Carry every inbound frame to the runtime until cancelled. ``serve_blocks=False``
    only for a byzantine test node (``node.byzantine``, ``mute-catchup``): it leaves
    every ``BlocksRequest`` unanswered."""
    serving = _Serving(set(), defaultdict(asyncio.Lock), Counter())
    try:
        await _pump(transport, links, runtime, serve_blocks, serving)
    finally:
        for task in serving.tasks:
            task.cancel()


async def _pump(
    transport: PeerTransport,
    links: TransportLinks,
    runtime: NodeRuntime,
    serve_blocks: bool,
    serving: _Serving,
) -> None:
    # A peer's payload is decoded with the counts an honest message holds: bytes
    # alone let one carry millions of requests, seconds of decoding.
    limits = wire_limits(runtime.config)
    async for peer, frame in transport:
        if transport.is_quarantined(peer):
            continue  # sent before its quarantine began: each may cost a full decode
        match frame:
            case ConsensusFrame(payload=payload):
                try:
                    message = decode_message(payload, limits)
                except WireError as exc:
                    runtime.count_fault("undecodable_message", peer, str(exc))
                    # An honest validator's payloads always decode (the same code
                    # encodes them): only a misbehaving member sends one that does not.
                    transport.quarantine(peer, "undecodable_message")
                    continue
                runtime.on_peer_message(peer, message)
            case TxFrame(tx=tx_bytes):
                runtime.on_peer_tx(peer, tx_bytes)
            case TxsFrame(txs=txs):
                for start in range(0, len(txs), TXS_PER_TURN):
                    if start:
                        # Consensus, other peers and the API run between chunks.
                        await asyncio.sleep(0)
                        if transport.is_quarantined(peer):
                            break  # its junk so far got it quarantined: the rest unread
                    # A chunk's signatures are checked as one batch.
                    runtime.on_peer_txs(peer, txs[start : start + TXS_PER_TURN])
            case BlocksRequest() if serve_blocks:
                if serving.pending[peer] >= SERVES_PER_PEER:
                    detail = f"{SERVES_PER_PEER} block requests already being served"
                    runtime.count_fault("too_many_block_requests", peer, detail)
                    continue
                serve = _serve_blocks(transport, runtime, peer, frame, serving.turns[peer])
                _spawn(serving, peer, serve)
            case BlocksRequest():
                pass  # the mute byzantine test node
            case BlocksReply():
                links.resolve_blocks(peer, frame)
            case BatchRequest() | BatchReply():
                # Never sent by a validator of this version (batches travel in blocks).
                runtime.count_fault("unsupported_frame", peer, type(frame).__name__)
                transport.quarantine(peer, "unsupported_frame")


class _Serving(NamedTuple):
    tasks: set[asyncio.Task[None]]
    turns: defaultdict[int, asyncio.Lock]
    """Per peer: its requests take turns, in the order they came (the lock is fair)."""
    pending: Counter[int]
    """Per peer: its serving tasks not yet done, at most ``SERVES_PER_PEER``."""


async def _serve_blocks(
    transport: PeerTransport,
    runtime: NodeRuntime,
    peer: int,
    request: BlocksRequest,
    turn: asyncio.Lock,
) -> None:
    # The reply must fit one frame: reading more would only be trimmed away.
    max_bytes = min(request.max_bytes, transport.config.max_frame_bytes // 2)
    try:
        async with turn:
            blocks = await runtime.blocks_for(request.first_height, request.last_height, max_bytes)
    except WorkerClosedError:
        return  # the node is shutting down
    transport.send(peer, BlocksReply(request.request_id, request.first_height, tuple(blocks)))


def _spawn(serving: _Serving, peer: int, coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(coroutine)
    serving.tasks.add(task)
    serving.pending[peer] += 1
    # A done callback, not a finally: a task cancelled before it ran skips its body.
    task.add_done_callback(functools.partial(_served, serving, peer))


def _served(serving: _Serving, peer: int, task: asyncio.Task[None]) -> None:
    serving.tasks.discard(task)
    serving.pending[peer] -= 1
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("serving blocks failed: %s: %s", type(exc).__name__, exc)
