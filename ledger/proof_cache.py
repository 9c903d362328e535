"""``ProofCache``: the range statements this node has verified, so each proof is checked once.

The mempool verifies each tx's range proof at admission (``ledger.mempool``);
the block that later carries the tx passes ``cache.batch_verify_first_failure``
as ``apply_block``'s ``range_verifier`` (a block falls at its first bad proof)
or ``cache.batch_verify`` as ``execute_batch``'s (which must name every bad
proof to keep the good txs), and verifies only what the cache has not seen.
``unseen`` and ``mark_verified`` let a node verify in a process pool: it sends
``unseen(statements)`` to the workers and marks the ones they accepted.
"""

from __future__ import annotations

import hashlib
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
    same proof. Bounded: the oldest entries go first.
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
        self._verified: dict[bytes, None] = {}

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
        return len(self._verified)

    def __contains__(self, statement: RangeStatement) -> bool:
        return self.key(statement) in self._verified

    def _remember(self, key: bytes) -> None:
        self._verified[key] = None
        while len(self._verified) > self._capacity:
            del self._verified[next(iter(self._verified))]

    def verify(self, statement: RangeStatement) -> None:
        """``verify_range`` unless already verified; raises ``RangeProofError``."""
        key = self.key(statement)
        if key in self._verified:
            return
        verify_range(statement)
        self._remember(key)

    def unseen(self, statements: Sequence[RangeStatement]) -> list[RangeStatement]:
        """The statements not verified before, in order, each once (for a worker pool)."""
        keys: set[bytes] = set()
        fresh: list[RangeStatement] = []
        for statement in statements:
            key = self.key(statement)
            if key not in self._verified and key not in keys:
                keys.add(key)
                fresh.append(statement)
        return fresh

    def mark_verified(self, statements: Sequence[RangeStatement]) -> None:
        """Remember statements verified elsewhere (a worker pool). Only ever pass ones
        that did verify: a marked statement is never checked again."""
        for statement in statements:
            self._remember(self.key(statement))

    def batch_verify(self, statements: Sequence[RangeStatement]) -> list[int]:
        """``batch_verify``'s contract, verifying only the statements not seen before."""
        keys = [self.key(s) for s in statements]
        unseen = [i for i, k in enumerate(keys) if k not in self._verified]
        if not unseen:
            return []
        bad_unseen = self._batch_verifier([statements[i] for i in unseen])
        bad = sorted(unseen[j] for j in bad_unseen)
        bad_set = set(bad)
        for i in unseen:
            if i not in bad_set:
                self._remember(keys[i])
        return bad

    def batch_verify_first_failure(self, statements: Sequence[RangeStatement]) -> list[int]:
        """``batch_verify_first_failure``'s contract (``[]`` or ``[lowest bad index]``),
        verifying only the statements not seen before: the block path, which stops at the
        first bad proof. The statements are remembered only when all hold."""
        keys = [self.key(s) for s in statements]
        unseen = [i for i, k in enumerate(keys) if k not in self._verified]
        if not unseen:
            return []
        bad_unseen = self._first_failure_verifier([statements[i] for i in unseen])
        if bad_unseen:
            return [unseen[min(bad_unseen)]]
        for i in unseen:
            self._remember(keys[i])
        return []
