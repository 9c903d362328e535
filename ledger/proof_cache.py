"""``ProofCache``: the range statements this node has verified, so each proof is checked once.

The mempool verifies each tx's range proof at admission (``ledger.mempool``);
the block that later carries the tx passes ``cache.batch_verify_first_failure``
as ``apply_block``'s ``range_verifier`` (a block falls at its first bad proof)
or ``cache.batch_verify`` as ``execute_batch``'s (which must name every bad
proof to keep the good txs), and verifies only what the cache has not seen.
``unseen`` and ``mark_verified`` let a node verify in a process pool: it sends
``unseen(statements)`` to the workers and marks the ones they accepted.

Threads: a node's mempool reads and marks the cache on its event loop while
the worker thread executes blocks through it. Every read and change of the
set of verified keys holds one lock, and the lock is never held while a proof
is verified (that takes milliseconds to seconds), so the loop waits at most
for a few dict operations.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from ledger.codec import encode_value
from privacy.rangeproof import (
    RangeStatement,
    batch_verify,
    batch_verify_first_failure,
    verify_range,
)

RangeVerifier = Callable[[Sequence[RangeStatement]], list[int]]
"""``privacy.rangeproof.batch_verify``'s contract: indices of the bad statements
(a block verifier may return only the lowest one, as ``batch_verify_first_failure``)."""


class ProofCache:
    """Range statements this node has already verified, so each proof is checked once.

    Keyed by SHA-256 over the whole statement (bits, transcript, label, every
    commitment, the proof bytes): a hit is the very same claim with the very
    same proof. Bounded: the oldest entries go first, from an ``OrderedDict``
    (a plain dict found its oldest key by iterating over every slot deleted
    since it last grew: quadratic once full, docs/performance.md).
    """

    def __init__(
        self,
        capacity: int = 100_000,
        *,
        batch_verifier: RangeVerifier = batch_verify,
        first_failure_verifier: RangeVerifier = batch_verify_first_failure,
    ) -> None:
        self._capacity = capacity
        self._batch_verifier = batch_verifier
        self._first_failure_verifier = first_failure_verifier
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(statement: RangeStatement) -> bytes:
        encoded = encode_value(
            (
                statement.bits,
                statement.transcript,
                statement.label,
                tuple(statement.commitments),
                statement.proof,
            )
        )
        return hashlib.sha256(encoded).digest()

    def __len__(self) -> int:
        with self._lock:
            return len(self._verified)

    def __contains__(self, statement: RangeStatement) -> bool:
        key = self.key(statement)
        with self._lock:
            return key in self._verified

    def _unseen_indices(self, keys: Sequence[bytes]) -> list[int]:
        with self._lock:
            return [i for i, key in enumerate(keys) if key not in self._verified]

    def _remember(self, keys: Sequence[bytes]) -> None:
        with self._lock:
            verified = self._verified
            for key in keys:
                verified[key] = None
            while len(verified) > self._capacity:
                verified.popitem(last=False)

    def verify(self, statement: RangeStatement) -> None:
        """``verify_range`` unless already verified; raises ``RangeProofError``."""
        key = self.key(statement)
        if not self._unseen_indices([key]):
            return
        verify_range(statement)
        self._remember([key])

    def unseen(self, statements: Sequence[RangeStatement]) -> list[RangeStatement]:
        """The statements not verified before, in order, each once (for a worker pool)."""
        keys = [self.key(s) for s in statements]
        taken: set[bytes] = set()
        fresh: list[RangeStatement] = []
        for i in self._unseen_indices(keys):
            if keys[i] not in taken:
                taken.add(keys[i])
                fresh.append(statements[i])
        return fresh

    def mark_verified(self, statements: Sequence[RangeStatement]) -> None:
        """Remember statements verified elsewhere (a worker pool). Only ever pass ones
        that did verify: a marked statement is never checked again."""
        self._remember([self.key(s) for s in statements])

    def batch_verify(self, statements: Sequence[RangeStatement]) -> list[int]:
        """``batch_verify``'s contract, verifying only the statements not seen before."""
        keys = [self.key(s) for s in statements]
        unseen = self._unseen_indices(keys)
        if not unseen:
            return []
        bad_unseen = self._batch_verifier([statements[i] for i in unseen])
        bad = sorted(unseen[j] for j in bad_unseen)
        bad_set = set(bad)
        self._remember([keys[i] for i in unseen if i not in bad_set])
        return bad

    def batch_verify_first_failure(self, statements: Sequence[RangeStatement]) -> list[int]:
        """``batch_verify_first_failure``'s contract (``[]`` or ``[lowest bad index]``),
        verifying only the statements not seen before: the block path, which stops at the
        first bad proof. The statements are remembered only when all hold."""
        keys = [self.key(s) for s in statements]
        unseen = self._unseen_indices(keys)
        if not unseen:
            return []
        bad_unseen = self._first_failure_verifier([statements[i] for i in unseen])
        if bad_unseen:
            return [unseen[min(bad_unseen)]]
        self._remember([keys[i] for i in unseen])
        return []
