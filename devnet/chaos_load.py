"""What the chaos tool measures while it breaks things: acknowledged txs and when they commit.

``AttestLoad``: one thread per bank submits that bank's attests at a steady rate,
nonces in order, to the bank's own node (the next live one while it is down),
and records every tx the API acknowledged (202). ``CommitWatcher`` follows the
chain on whichever node answers and notes when each tx id first appears in a
committed block: commit latency, tx/s per phase, and the set of txs some node
reported committed (for the no-lost-commit check).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from client.sdk import Client, RetryPolicy, VeilApiError
from client.wallet_file import WalletDir
from devnet.chaos_reads import Reads
from devnet.network import Devnet
from ledger.build import build_attest

SUBMIT_TIMEOUT_S = 3.0


def quick_client(url: str, timeout_s: float = SUBMIT_TIMEOUT_S) -> Client:
    return Client(url, timeout_s=timeout_s, retry=RetryPolicy(attempts=1))


@dataclass(frozen=True, slots=True)
class Ack:
    tx_id: bytes
    bank: int
    node: int
    at_s: float
    """time.monotonic() when the API acknowledged it."""


@dataclass(slots=True)
class AttestLoad:
    devnet: Devnet
    rate_per_bank: float
    seed: int
    reads: Reads
    acks: list[Ack] = field(default_factory=list)
    failed_submits: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        nodes = list(range(self.devnet.nodes))
        chain_id = self.reads.first_answer(nodes, "GET /v1/chain", lambda c: c.chain()).chain_id
        for bank in range(self.devnet.nodes):
            thread = threading.Thread(
                target=self._bank_loop, args=(bank, chain_id), daemon=True, name=f"load-{bank}"
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> list[Ack]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return list(self.acks)

    def _bank_loop(self, bank: int, chain_id: bytes) -> None:
        rng = random.Random(self.seed * 1000 + bank)
        wallet = WalletDir.open(self.devnet.bank_dir(bank), read_state=False)
        identity = wallet.wallet.identity
        nonce = self._last_nonce(wallet.public_key)
        period_s = 1.0 / self.rate_per_bank
        next_at = time.monotonic()
        while not self._stop.is_set():
            next_at = max(next_at + period_s, time.monotonic())
            self._stop.wait(max(0.0, next_at - time.monotonic()))
            nonce += 1
            tx = build_attest(identity, chain_id, "chaos", rng.randbytes(32), nonce=nonce)
            order = [bank, *[(bank + k) % self.devnet.nodes for k in range(1, self.devnet.nodes)]]
            for node in order:
                if self._stop.is_set():
                    return
                try:
                    quick_client(self.devnet.url(node)).submit(tx.encode())
                except (VeilApiError, OSError):
                    with self._lock:
                        self.failed_submits += 1
                    continue
                with self._lock:
                    self.acks.append(Ack(tx.tx_id, bank, node, time.monotonic()))
                break

    def _last_nonce(self, public_key: bytes) -> int:
        for node in range(self.devnet.nodes):
            try:
                return quick_client(self.devnet.url(node)).account(public_key).last_nonce
            except (VeilApiError, OSError):
                continue
        return 0


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

    def start(self) -> None:
        """Follow the chain from its current tip (older blocks hold no tx of this run)."""
        nodes = list(range(self.devnet.nodes))
        status = self.reads.first_answer(nodes, "GET /v1/status", lambda c: c.status())
        self._next_height = status.height + 1
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
                client = quick_client(self.devnet.url(node), 2)
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
