"""``StatelessCache`` and ``ProofCache`` evict oldest first from an ``OrderedDict``:
the same entries as a plain FIFO model at every step (the plain dict they used
found its oldest key by iterating, quadratic once full, docs/performance.md)."""

from __future__ import annotations

from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.proof_cache import ProofCache
from ledger.recorded_apply import AppliedTx
from ledger.stateless_cache import StatelessCache
from ledger.tx import DecodedTx

TXS = st.sampled_from([bytes([n]) * 8 for n in range(10)])
# ("add" | "applied", tx bytes): admit (or re-admit) a tx, or record its stateful result.
OPS = st.lists(st.tuples(st.sampled_from(["add", "applied"]), TXS), max_size=60)


@settings(max_examples=300)
@given(capacity=st.integers(1, 6), ops=OPS)
def test_the_stateless_cache_keeps_what_a_fifo_keeps(
    capacity: int, ops: list[tuple[str, bytes]]
) -> None:
    cache = StatelessCache(capacity)
    order: list[bytes] = []  # the model: oldest first, a re-add keeps its place
    passed: dict[bytes, object] = {}
    applied: dict[bytes, object] = {}
    for step, (op, tx) in enumerate(ops):
        marker = object()
        if op == "add":
            cache.add(tx, cast(DecodedTx, marker))
            if tx not in passed:
                order.append(tx)
            passed[tx] = marker
            while len(order) > capacity:
                evicted = order.pop(0)
                del passed[evicted]
                applied.pop(evicted, None)
        else:
            cache.record_applied(tx, cast(AppliedTx, marker))
            if tx in passed:
                applied[tx] = marker
        assert len(cache) == len(order), step
        for candidate in {t for _, t in ops}:
            assert cache.checked(candidate) is passed.get(candidate)
            assert cache.applied(candidate) is applied.get(candidate)


@settings(max_examples=300)
@given(capacity=st.integers(1, 6), batches=st.lists(st.lists(TXS, max_size=4), max_size=30))
def test_the_proof_cache_keeps_what_a_fifo_keeps(capacity: int, batches: list[list[bytes]]) -> None:
    cache = ProofCache(capacity)
    order: list[bytes] = []
    for keys in batches:
        cache._remember(keys)
        for key in keys:
            if key not in order:
                order.append(key)
        del order[: max(0, len(order) - capacity)]
        assert len(cache) == len(order)
        everything = sorted({k for batch in batches for k in batch})
        unseen = cache._unseen_indices(everything)
        assert [everything[i] for i in unseen] == [k for k in everything if k not in order]
