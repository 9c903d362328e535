"""What the chaos tool measures while it breaks things: acknowledged txs and when they commit.

``GeneratorLoad`` runs the load generator's engine (``devnet.load.run.run_load``,
the same as ``python -m benchmarks.load``) in a thread of its own with
``kind="mixed"``: two-output confidential transfers from a few funded senders
(each sender's transfers chained, the next sent once the last committed) and the
banks' attests, at a modest total rate, to every node (a
node that does not answer is skipped, a tx stalled 30 s after its ack is sent to
another node). Every tx an API acknowledged is recorded with the time.
``CommitWatcher`` follows the chain on whichever node answers and notes when each
tx id first appears in a committed block: commit latency, tx/s per phase, and the
set of txs some node reported committed (for the no-lost-commit check).
"""

from __future__ import annotations

import asyncio
import io
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console

from client.sdk import VeilApiError
from devnet.chaos_reads import POLL_TIMEOUT_S, Reads
from devnet.load import drive
from devnet.load.run import LoadReport, run_load
from devnet.network import Devnet, DevnetError

TRANSFER_SENDERS = 4
"""Few senders: each proof costs tens of ms, and a short run needs only a few dozen."""
PREPARED_MARGIN_S = 120.0
"""Attests are prepared for the planned duration plus this (a round may overrun it)."""
TRANSFER_EVERY_S = 3.0
"""A sender's transfers are chained (one per commit): one per this many seconds planned
is about what a loaded devnet commits; a chain that runs out leaves the attests going."""
MAX_TRANSFERS_PER_SENDER = 250
SETUP_TIMEOUT_S = 900.0
"""Funding the senders and proving the transfers, on a loaded 2-core machine."""
SETUP_S_PER_TRANSFER = 0.3
"""Added to the setup timeout per transfer asked for with ``transfers`` (10,000 take about
11 minutes to prove on the idle machine, several times that while others run)."""
TRANSFERS_PER_SENDER_AT_SCALE = 100
"""With ``transfers`` asked for, one sender per this many: a sender's chain has one tx in
flight at a time, so 10,000 transfers need about a hundred chains to commit in minutes."""
MAX_ATTESTS = 20_000
"""Attests beside a large transfer run; more would only lengthen the setup."""
DRAIN_S = 20.0


@dataclass(frozen=True, slots=True)
class Ack:
    tx_id: bytes
    kind: str
    """``attest`` or ``transfer``."""
    node: int
    at_s: float
    """time.monotonic() when the API acknowledged it."""


def senders_for(transfers: int | None) -> int:
    if transfers is None:
        return TRANSFER_SENDERS
    return max(TRANSFER_SENDERS, math.ceil(transfers / TRANSFERS_PER_SENDER_AT_SCALE))


def prepared_txs(
    rate_tx_per_s: float, planned_s: float, senders: int, transfers: int | None = None
) -> tuple[int, int]:
    """(all txs, of which transfers) to prepare for a run of ``planned_s``; ``transfers``, if
    given, is how many must commit in the fault phase (the baseline's come on top)."""
    if transfers is None:
        per_sender = min(MAX_TRANSFERS_PER_SENDER, math.ceil(planned_s / TRANSFER_EVERY_S))
        transfers = senders * per_sender
    else:  # the baseline (at most BASELINE_MAX_S of chaos.py, 10 s) commits some first
        transfers += math.ceil(rate_tx_per_s * 10.0) + senders
    attests = min(MAX_ATTESTS, math.ceil(rate_tx_per_s * (planned_s + PREPARED_MARGIN_S)))
    return transfers + attests, transfers


class LineSink(io.StringIO):
    """A text stream that hands each complete, non-blank line to ``say``: the
    generator's rich console, off a terminal, prints a line per step."""

    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__()
        self._say = say
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            if line.strip():
                self._say(line.strip())
        return len(text)


@dataclass(slots=True)
class GeneratorLoad:
    devnet: Devnet
    rate_tx_per_s: float
    planned_s: float
    """How long the run means to load the devnet (the load stops earlier on ``stop``)."""
    transfers: int | None = None
    """Transfers that must commit in the fault phase (``--transfers``); None: a few per sender."""
    say: Callable[[str], None] = lambda line: None
    """The generator's own progress (funding, proving: minutes for thousands of transfers)."""
    acks: list[Ack] = field(default_factory=list)
    report: LoadReport | None = None
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _first_ack: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def senders(self) -> int:
        return senders_for(self.transfers)

    def start(self) -> None:
        """Set up and prove (blocking), and return once the first tx was acknowledged."""
        timeout_s = SETUP_TIMEOUT_S + SETUP_S_PER_TRANSFER * (self.transfers or 0)
        self._thread = threading.Thread(target=self._run, daemon=True, name="chaos-load")
        self._thread.start()
        deadline_s = time.monotonic() + timeout_s
        while not self._first_ack.wait(0.2):
            if not self._thread.is_alive():
                raise DevnetError(f"the load generator stopped before its first ack: {self.error}")
            if time.monotonic() > deadline_s:
                self._stop.set()
                raise DevnetError(f"the load generator had no tx acknowledged in {timeout_s:g} s")

    def stop(self) -> list[Ack]:
        """Stop submitting; the generator drains (up to ``DRAIN_S``) and reports."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=DRAIN_S + 120)
        with self._lock:
            return list(self.acks)

    def committed_since(self, kind: str, seen_s: dict[bytes, float], since_s: float) -> int:
        """Acknowledged txs of ``kind`` first seen committed at or after ``since_s``."""
        with self._lock:
            acks = list(self.acks)
        return sum(1 for a in acks if a.kind == kind and seen_s.get(a.tx_id, -1.0) >= since_s)

    def _run(self) -> None:
        count, transfers = prepared_txs(
            self.rate_tx_per_s, self.planned_s, self.senders, self.transfers
        )
        try:
            self.report = asyncio.run(
                run_load(
                    self.devnet.root,
                    "mixed",
                    # The stop event ends it; the duration only bounds a forgotten run.
                    duration_s=self.planned_s + 24 * 3600,
                    rate=self.rate_tx_per_s,
                    on_ack=self._on_ack,
                    stop=self._stop,
                    count=count,
                    transfers=transfers,
                    senders=self.senders,
                    drain_s=DRAIN_S,
                    console=Console(file=LineSink(self.say), force_terminal=False, width=120),
                )
            )
        except Exception as exc:  # reported by start() or in the run's notes
            self.error = exc

    def _on_ack(self, ack: drive.Ack) -> None:
        with self._lock:
            self.acks.append(Ack(ack.tx_id, ack.kind, ack.node, time.monotonic()))
        self._first_ack.set()


@dataclass(slots=True)
class CommitWatcher:
    """Polls the chain; ``seen_s[tx_id]`` is when a tx was first seen committed."""

    devnet: Devnet
    reads: Reads
    poll_s: float = 0.1
    seen_s: dict[bytes, float] = field(default_factory=dict)
    block_seen_s: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _next_height: int = 1

    def note_tip(self) -> None:
        """Follow the chain from its current tip (older blocks hold no tx of this run)."""
        nodes = list(range(self.devnet.nodes))
        status = self.reads.first_answer(nodes, "GET /v1/status", lambda c: c.status())
        self._next_height = status.height + 1

    def start(self) -> None:
        """Poll from the noted tip, in a thread. Started after the load's setup: that forks
        proving processes, and a fork while this thread holds a lock can deadlock."""
        self._thread = threading.Thread(target=self._loop, daemon=True, name="commit-watcher")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        node = 0
        while not self._stop.is_set():
            try:
                client = self.reads.client(node, POLL_TIMEOUT_S)
                top = client.status().height
                while self._next_height <= top and not self._stop.is_set():
                    block = client.block(self._next_height)
                    now = time.monotonic()
                    self.block_seen_s[block.height] = now
                    for tx in block.txs:
                        self.seen_s.setdefault(tx.id, now)
                    self._next_height += 1
            except (VeilApiError, OSError):
                node = (node + 1) % self.devnet.nodes  # that node is down or cut off
            self._stop.wait(self.poll_s)
