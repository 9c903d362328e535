"""The submit loop of the load generator: lanes of prepared txs, batches over HTTP, commits.

A *lane* holds txs that must reach the chain in order: a bank's attests (its
nonces count up) or one sender's chain of transfers (each spends the previous
one's change, so the next is released only once the previous is committed).
Each lane has at most one request in flight. Every ``tick_s`` the loop hands
out *tokens* (``rate`` per second, or, without a rate, as many as keep
``max_in_flight`` txs submitted but not yet committed) and sends each node one
``POST /v1/txs:batch`` (msgpack, at most ``max_batch_txs``) with the ready txs
of the lanes that use it.

Answers, per tx: accepted or already known (``pending``/``committed``) is an
*ack*; a busy answer (429/503) keeps the tx in its lane and parks the lane for
the wait it names (an item's ``retry_after_ms``, else a second). A per-tx busy
answer also moves the lane to the next node, unless txs the lane had acked
there are not committed yet: a bank's later nonce sent elsewhere could commit
first and turn the earlier ones ``REPLAYED``;
any other error is a *refusal*, counted by code (a
refused transfer ends its chain). A node that cannot be reached is skipped
for a second and its lanes go to the next node. An acked tx not committed
after ``resubmit_after_s`` is sent again to another node (submission is
idempotent), so a chain survives a node killed right after its ack.

Commits are seen by polling one live node: its height, then each new block
as raw bytes, whose tx ids are computed here (cheap for the node, unlike the
JSON views). A tx's latency runs from the moment its batch was sent to the
moment the poll saw its block.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import msgpack

from devnet.load.txs import PreparedTx
from ledger.block import decode_block
from ledger.tx import tx_id_of

BUSY_STATUSES: Final = frozenset({429, 503})
NODE_DOWN_S: Final = 1.0
REQUEST_TIMEOUT_S: Final = 30.0
BURST_S: Final = 0.5
"""With a rate, tokens not used (every lane busy, or a slow tick) are kept up to this
many seconds' worth, so a loaded generator still offers the rate on average."""


@dataclass(frozen=True, slots=True)
class Ack:
    """A tx a node acknowledged (202 pending, or already known)."""

    tx_id: bytes
    kind: str
    node: int
    submitted_at_s: float
    """``time.time()`` when its batch was sent."""
    acked_at_s: float
    """``time.time()`` when the answer came."""

    @property
    def tx_id_hex(self) -> str:
        return self.tx_id.hex()


@dataclass(slots=True)
class Lane:
    kind: str
    node: int
    txs: deque[PreparedTx]
    chained: bool
    """A sender's transfers: the next one waits for the previous one's commit."""
    waiting_for: bytes | None = None
    in_flight: bool = False
    parked_until_s: float = 0.0
    dead: bool = False
    open: set[bytes] = field(default_factory=set)
    """Its acked txs not yet seen committed: while any are, a busy answer keeps ``node``."""


@dataclass(slots=True)
class DriveStats:
    sent: int = 0
    acked: dict[bytes, Ack] = field(default_factory=dict)
    committed_at_s: dict[bytes, float] = field(default_factory=dict)
    committed_height: dict[bytes, int] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    busy: Counter[str] = field(default_factory=Counter)
    http_status: Counter[int] = field(default_factory=Counter)
    unreachable: int = 0
    resubmitted: int = 0
    broken_chains: int = 0

    @property
    def server_errors(self) -> int:
        """HTTP 5xx answers other than the busy 503."""
        return sum(n for status, n in self.http_status.items() if status >= 500 and status != 503)


class Driver:
    """Runs the lanes against the nodes at ``urls``; see the module docstring."""

    def __init__(
        self,
        urls: Sequence[str],
        chain_id: bytes,
        lanes: Sequence[Lane],
        *,
        rate: float | None,
        max_in_flight: int,
        max_batch_txs: int = 256,
        tick_s: float = 0.02,
        poll_s: float = 0.02,
        resubmit_after_s: float = 30.0,
        on_ack: Callable[[Ack], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.urls = list(urls)
        self.chain_id = chain_id
        self.lanes = list(lanes)
        self.rate = rate
        self.max_in_flight = max_in_flight
        self.max_batch_txs = max_batch_txs
        self.tick_s = tick_s
        self.poll_s = poll_s
        self.resubmit_after_s = resubmit_after_s
        self.on_ack = on_ack
        self.clock = clock
        self.stats = DriveStats()
        self._down_until_s = [0.0] * len(self.urls)
        self._waiting: dict[bytes, Lane] = {}
        self._submitting = 0
        self._tokens = 0.0
        self._seen_height = 0
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_resubmit_scan_s = 0.0
        self._ours = {tx.tx_id: (lane, tx) for lane in self.lanes for tx in lane.txs}
        """Every tx the lanes hold, by id, with its lane: only these are tracked and resubmitted."""
        self._open: set[bytes] = set()
        """Acked, not yet seen committed."""
        self._poll_node = 0
        self._next_lane = 0

    # --- public ------------------------------------------------------------------

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=64)
        self._session = aiohttp.ClientSession(connector=connector)
        self._seen_height = await self._height() or 0

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()

    async def submit_for(self, duration_s: float, stop: threading.Event | None = None) -> None:
        """Submit until ``duration_s`` has passed, ``stop`` is set (from any thread: the
        chaos tool ends its load when its faults are healed) or every lane is empty."""
        end_s = self.clock() + duration_s
        last_s = self.clock()
        while self.clock() < end_s and not self.exhausted:
            if stop is not None and stop.is_set():
                return
            now_s = self.clock()
            self._tokens = self._allowance(now_s - last_s)
            last_s = now_s
            self._dispatch(now_s)
            self._resubmit_stalled(now_s)
            await asyncio.sleep(self.tick_s)

    async def drain(self, timeout_s: float) -> None:
        """Wait (still resubmitting stalled txs) until every ack is committed, or ``timeout_s``."""
        end_s = self.clock() + timeout_s
        while self.clock() < end_s:
            if self._submitting == 0 and not self._open:
                return
            self._resubmit_stalled(self.clock())
            await asyncio.sleep(self.poll_s)

    async def follow_commits(self) -> None:
        """Poll a live node for new blocks until cancelled."""
        while True:
            # A node that went away or sent something odd: try again, maybe elsewhere.
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                await self._poll_once()
            await asyncio.sleep(self.poll_s)

    async def final_statuses(self, ids: Sequence[bytes]) -> dict[bytes, tuple[str, str | None]]:
        """(status, reason) from a live node for txs the poll did not see committed."""
        found: dict[bytes, tuple[str, str | None]] = {}
        limit = asyncio.Semaphore(16)

        async def one(tx_id: bytes) -> None:
            async with limit:
                for node in self._live_nodes(self.stats.acked[tx_id].node):
                    body = await self._get_json(node, f"/v1/txs/{tx_id.hex()}")
                    if body is None:
                        continue
                    if "status" in body:
                        found[tx_id] = (str(body["status"]), _reason(body))
                        return
                    found[tx_id] = ("unknown", None)
                    return
                found[tx_id] = ("unknown", "no node answered")

        await asyncio.gather(*(one(tx_id) for tx_id in ids))
        return found

    @property
    def exhausted(self) -> bool:
        return all(lane.dead or (not lane.txs and not lane.in_flight) for lane in self.lanes)

    # --- dispatch ----------------------------------------------------------------

    def _allowance(self, elapsed_s: float) -> float:
        if self.rate is None:
            return float(max(0, self.max_in_flight - len(self._open) - self._submitting))
        burst = max(1.0, self.rate * BURST_S)
        return min(burst, self._tokens + self.rate * elapsed_s)

    def _ready(self, lane: Lane, now_s: float) -> bool:
        return (
            not lane.dead
            and not lane.in_flight
            and bool(lane.txs)
            and lane.parked_until_s <= now_s
            and lane.waiting_for is None
        )

    def _dispatch(self, now_s: float) -> None:
        batches: dict[int, list[tuple[Lane, list[PreparedTx]]]] = {}
        counts: dict[int, int] = {}
        # Start after the lane served last: at a low rate one token comes per few ticks,
        # and a fixed order gave every one to the first ready lane (one bank, one node).
        start = self._next_lane
        for offset in range(len(self.lanes)):
            lane_index = (start + offset) % len(self.lanes)
            lane = self.lanes[lane_index]
            if self._tokens < 1:
                break
            if not self._ready(lane, now_s):
                continue
            node = self._node_for(lane, now_s)
            if node is None:
                return
            room = self.max_batch_txs - counts.get(node, 0)
            take = min(room, int(self._tokens), 1 if lane.chained else len(lane.txs))
            if take < 1:
                continue
            txs = [lane.txs[i] for i in range(take)]
            lane.in_flight = True
            self._next_lane = (lane_index + 1) % len(self.lanes)
            batches.setdefault(node, []).append((lane, txs))
            counts[node] = counts.get(node, 0) + take
            self._tokens -= take
        for node, parts in batches.items():
            self._spawn(self._send(node, parts))

    def _node_for(self, lane: Lane, now_s: float) -> int | None:
        for offset in range(len(self.urls)):
            node = (lane.node + offset) % len(self.urls)
            if self._down_until_s[node] <= now_s:
                lane.node = node
                return node
        return None

    def _live_nodes(self, first: int) -> list[int]:
        now_s = self.clock()
        order = [(first + i) % len(self.urls) for i in range(len(self.urls))]
        return [n for n in order if self._down_until_s[n] <= now_s]

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, node: int, parts: list[tuple[Lane, list[PreparedTx]]]) -> None:
        txs = [tx for _, lane_txs in parts for tx in lane_txs]
        self._submitting += len(txs)
        sent_s = self.clock()
        self.stats.sent += len(txs)
        try:
            results = await self._post_batch(node, [tx.data for tx in txs])
        finally:
            self._submitting -= len(txs)
            for lane, _ in parts:
                lane.in_flight = False
        if results is None:
            return  # unreachable or a whole-request error: the txs stay in their lanes
        index = 0
        for lane, lane_txs in parts:
            for tx in lane_txs:
                self._on_result(lane, tx, results[index], node, sent_s)
                index += 1

    def _on_result(
        self, lane: Lane, tx: PreparedTx, result: dict[str, object], node: int, sent_s: float
    ) -> None:
        now_s = self.clock()
        error = result.get("error")
        if isinstance(error, dict):
            code = str(error.get("code"))
            if code in ("RATE_LIMITED", "MEMPOOL_FULL", "NODE_STOPPED"):
                self.stats.busy[code] += 1
                lane.parked_until_s = now_s + _busy_wait_s(error)
                # The next try goes to the next node: a node cut off from the others stays
                # busy for good once its mempool is full, and held a chain there forever.
                # Not while the lane's acked txs there are open: the node may not have
                # gossiped them, and a later nonce committed first replays them. A cut-off
                # node's open txs go elsewhere after resubmit_after_s, which frees the lane.
                if not lane.open:
                    lane.node = (node + 1) % len(self.urls)
                return
            self.stats.refused[code] += 1
            if lane.txs and lane.txs[0] is tx:
                lane.txs.popleft()
            if lane.chained:
                lane.dead = True
                self.stats.broken_chains += 1
            return
        if lane.txs and lane.txs[0] is tx:
            lane.txs.popleft()
        status = result.get("status")
        if status == "rejected":
            self.stats.refused[str(result.get("reason", "REJECTED"))] += 1
            if lane.chained:
                lane.dead = True
                self.stats.broken_chains += 1
            return
        if tx.tx_id not in self.stats.acked:
            ack = Ack(tx.tx_id, lane.kind, node, sent_s, now_s)
            self.stats.acked[tx.tx_id] = ack
            if tx.tx_id not in self.stats.committed_at_s:
                self._open.add(tx.tx_id)
                lane.open.add(tx.tx_id)
            if self.on_ack is not None:
                self.on_ack(ack)
        if lane.chained and tx.tx_id not in self.stats.committed_at_s:
            lane.waiting_for = tx.tx_id
            self._waiting[tx.tx_id] = lane

    def _resubmit_stalled(self, now_s: float) -> None:
        if now_s - self._last_resubmit_scan_s < 1.0:
            return
        self._last_resubmit_scan_s = now_s
        acked = self.stats.acked
        stalled = [
            acked[tx_id]
            for tx_id in self._open
            if now_s - acked[tx_id].acked_at_s > self.resubmit_after_s
        ]
        if not stalled:
            return
        by_node: dict[int, list[PreparedTx]] = {}
        for ack in stalled[: self.max_batch_txs * len(self.urls)]:
            live = self._live_nodes(ack.node + 1)
            if not live:
                return
            by_node.setdefault(live[0], []).append(self._ours[ack.tx_id][1])
            # Restart its clock, so a tx is resent at most once per resubmit_after_s.
            self.stats.acked[ack.tx_id] = Ack(
                ack.tx_id, ack.kind, ack.node, ack.submitted_at_s, now_s
            )
        for node, txs in by_node.items():
            self.stats.resubmitted += len(txs)
            self._spawn(self._resend(node, txs[: self.max_batch_txs]))

    async def _resend(self, node: int, txs: list[PreparedTx]) -> None:
        results = await self._post_batch(node, [tx.data for tx in txs])
        for tx, result in zip(txs, results or [], strict=False):
            if result.get("status") == "rejected":
                self._settle_rejected(tx.tx_id)

    def _settle_rejected(self, tx_id: bytes) -> None:
        self._settle(tx_id)
        lane = self._waiting.pop(tx_id, None)
        if lane is not None:
            lane.waiting_for = None
            lane.dead = True
            self.stats.broken_chains += 1

    def _settle(self, tx_id: bytes) -> None:
        """The tx is committed or rejected for good: no longer open, nor holding its lane."""
        self._open.discard(tx_id)
        self._ours[tx_id][0].open.discard(tx_id)

    # --- HTTP --------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Driver.start() first")
        return self._session

    async def scrape_metrics(self) -> list[str | None]:
        """Each node's ``/metrics`` text (None if unreadable)."""

        async def one(url: str) -> str | None:
            try:
                async with self._http().get(
                    f"{url}/metrics", timeout=aiohttp.ClientTimeout(total=5)
                ) as response:
                    if response.status != 200:
                        return None
                    return await response.text()
            except (aiohttp.ClientError, TimeoutError):
                return None

        return list(await asyncio.gather(*(one(url) for url in self.urls)))

    def _mark_down(self, node: int) -> None:
        self.stats.unreachable += 1
        self._down_until_s[node] = self.clock() + NODE_DOWN_S

    async def _post_batch(self, node: int, txs: list[bytes]) -> list[dict[str, object]] | None:
        body = msgpack.packb(txs, use_bin_type=True)
        try:
            async with self._http().post(
                f"{self.urls[node]}/v1/txs:batch",
                data=body,
                headers={"Content-Type": "application/msgpack"},
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            ) as response:
                self.stats.http_status[response.status] += 1
                payload = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self._mark_down(node)
            return None
        if response.status in BUSY_STATUSES:
            self.stats.busy[f"HTTP {response.status}"] += 1
            return None
        results = payload.get("results") if isinstance(payload, dict) else None
        if response.status != 200 or not isinstance(results, list) or len(results) != len(txs):
            self.stats.refused[f"HTTP {response.status}"] += len(txs)
            return None
        return [r if isinstance(r, dict) else {} for r in results]

    async def _get_json(self, node: int, path: str) -> dict[str, object] | None:
        try:
            async with self._http().get(
                f"{self.urls[node]}{path}", timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                self.stats.http_status[response.status] += 1
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self._mark_down(node)
            return None
        return body if isinstance(body, dict) else None

    async def _height(self) -> int | None:
        for node in self._live_nodes(0):
            body = await self._get_json(node, "/v1/status")
            height = None if body is None else body.get("height")
            if isinstance(height, int):
                self._poll_node = node
                return height
        return None

    async def _poll_once(self) -> None:
        height = await self._height()
        if height is None:
            return
        node = self._poll_node
        while self._seen_height < height:
            next_height = self._seen_height + 1
            async with self._http().get(
                f"{self.urls[node]}/v1/blocks/{next_height}",
                params={"format": "raw"},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                if response.status != 200:
                    return
                raw = await response.read()
            self._on_block(next_height, raw)
            self._seen_height = next_height

    def _on_block(self, height: int, raw: bytes) -> None:
        now_s = self.clock()
        block = decode_block(raw)
        stats = self.stats
        for tx in block.txs:
            tx_id = tx_id_of(tx.kind, tx.body, self.chain_id)
            if tx_id not in self._ours or tx_id in stats.committed_at_s:
                continue
            stats.committed_at_s[tx_id] = now_s
            stats.committed_height[tx_id] = height
            self._settle(tx_id)
            lane = self._waiting.pop(tx_id, None)
            if lane is not None and lane.waiting_for == tx_id:
                lane.waiting_for = None


def _busy_wait_s(error: dict[object, object]) -> float:
    """The wait a busy item names (``retry_after_ms``), else a second."""
    wait_ms = error.get("retry_after_ms")
    if isinstance(wait_ms, int) and not isinstance(wait_ms, bool) and wait_ms > 0:
        return wait_ms / 1000
    return 1.0


def _reason(body: dict[str, object]) -> str | None:
    reason = body.get("reason")
    return reason if isinstance(reason, str) else None
