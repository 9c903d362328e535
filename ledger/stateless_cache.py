"""``StatelessCache``: tx bytes whose stateless checks passed here, so execution skips them.

``rules.check_stateless`` (size, structure, points, memo keys, the signer's
and approvers' ed25519 signatures, a registration's proof of possession, an
issue's excess proof) is a function of the tx bytes and the chain alone. The
mempool runs it at admission; ``execute_batch`` would run it again for the
same bytes when the block carrying them executes. The node's mempool adds the
bytes of every tx that passed phase 1, and execution asks
``cache.checked(payload)`` to skip the repeat. Keyed by the exact bytes
themselves: the same tx id with another signature is other bytes, and is
checked. A key was their SHA-256 before, four hashes a tx on the event loop
and the worker (``add``, ``record_applied``, ``checked``, ``applied``); a
bytes key costs one cached ``hash()`` for the admitted object and one
SipHash and compare for the block's copy, and cannot collide. The bytes it
keeps are bounded too (``max_bytes``), as the decoded txs already cost about
as much.

It also keeps, for the same bytes, the latest ``AppliedTx`` the mempool
recorded (``record_applied``): the tx's stateful result with the state values
it read, which execution merges instead of running ``apply_tx`` again where
those values still hold (``ledger.recorded_apply``).

Threads: the mempool adds on the event loop while the worker thread executes;
every access holds one lock, for a dict operation. Decoded txs are immutable.
Bounded, oldest first out: an entry is needed only until its block executes,
seconds after admission, and an evicted one is merely checked again. The order
is an ``OrderedDict``'s: a plain dict found its oldest key by iterating, which
skips every slot deleted since the dict last grew, 16.6 us a tx once full
against 0.9 (docs/performance.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

from ledger.recorded_apply import AppliedTx
from ledger.tx import DecodedTx

DEFAULT_CAPACITY: Final = 16_384
DEFAULT_MAX_BYTES: Final = 64 << 20
"""Tx bytes kept at most: 16,384 attests (168 B) are 2.6 MiB and two-output
transfers (1,706 B) 27 MiB, so the count bounds ordinary load; the bytes bound a
flood of 64 KiB txs."""


class StatelessCache:
    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if capacity < 1 or max_bytes < 1:
            raise ValueError("capacity and max_bytes must be positive")
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._bytes = 0
        self._passed: OrderedDict[bytes, DecodedTx] = OrderedDict()
        self._applied: dict[bytes, AppliedTx] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(tx_bytes: bytes) -> bytes:
        """The exact bytes, as an immutable ``bytes`` (the object itself when it is one)."""
        return tx_bytes if type(tx_bytes) is bytes else bytes(tx_bytes)

    def add(self, tx_bytes: bytes, decoded: DecodedTx) -> None:
        """``decoded`` is ``tx_bytes`` decoded, and it passed ``check_stateless``."""
        key = self.key(tx_bytes)
        passed = self._passed
        with self._lock:
            if key not in passed:
                self._bytes += len(key)
            passed[key] = decoded
            while len(passed) > self._capacity or self._bytes > self._max_bytes:
                evicted, _ = passed.popitem(last=False)
                self._bytes -= len(evicted)
                self._applied.pop(evicted, None)

    def record_applied(self, tx_bytes: bytes, applied: AppliedTx) -> None:
        """``applied`` is what ``apply_tx`` gave the tx of ``tx_bytes`` (added before)
        on a view, with the values it read there; ignored if the bytes are not here."""
        key = self.key(tx_bytes)
        with self._lock:
            if key in self._passed:
                self._applied[key] = applied

    def applied(self, tx_bytes: bytes) -> AppliedTx | None:
        """The latest ``AppliedTx`` recorded for these exact bytes, if any."""
        key = self.key(tx_bytes)
        with self._lock:
            return self._applied.get(key)

    def checked(self, tx_bytes: bytes) -> DecodedTx | None:
        """The tx these exact bytes decoded to, if it passed here; else ``None``."""
        key = self.key(tx_bytes)
        with self._lock:
            return self._passed.get(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._passed)
