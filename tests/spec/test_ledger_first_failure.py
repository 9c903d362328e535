"""Issue 8 §2.2: a backup checking a block stops at the first bad range proof.

A byzantine primary's block whose every tx carries a bad proof used to cost a
full bisection down to every bad proof (64 bad 16×64 proofs: 12.5 s against
1.3 s for one bad among 64). ``apply_block`` needs only the first, so its
default verifier is ``batch_verify_first_failure``; the reason and index are the
same as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ledger.apply import apply_block
from ledger.build import BuiltTx, seal_outputs
from ledger.proof_cache import ProofCache
from ledger.reasons import BlockRejected, Reason
from ledger.rules import range_statement
from ledger.tx import TransferBody, decode_tx
from privacy import group
from privacy import rangeproof as rp
from privacy.memo import Opening
from privacy.rangeproof import RangeStatement
from tests.spec.ledger_world import EUR, USD, Party, raw_block
from tests.spec.test_ledger_spec import Pre, pre, resign

# Verification runs once per multiscalar backend (tests/conftest.py): both must agree.
pytestmark = pytest.mark.usefixtures("msm_backend")

__all__ = ["pre"]  # the shared pre-state fixture


def _bad_proof_transfer(
    p: Pre, sender: Party, asset: bytes, spend: tuple[bytes, Opening]
) -> BuiltTx:
    """A balanced transfer of the whole input back to ``sender`` with another proof's bytes."""
    w = p.world
    output_id, opening = spend
    plans = [sender.plan(opening.value)]
    sealed = seal_outputs(plans, asset, w.auditor.memo_public)
    other = seal_outputs(plans, asset, w.auditor.memo_public)
    body = TransferBody(sender.key, asset, (output_id,), sealed.outputs, other.range_proof)
    return resign(p, sender, body, (opening.blinding - sealed.openings[0].blinding) % group.ORDER)


def _four_bad(p: Pre) -> list[BuiltTx]:
    w = p.world
    return [
        _bad_proof_transfer(p, w.alice, USD, w.spend(p.i1, 1)),
        _bad_proof_transfer(p, w.bob, USD, w.spend(p.t1, 0)),
        _bad_proof_transfer(p, w.alice, USD, w.spend(p.t1, 1)),
        _bad_proof_transfer(p, w.carol, EUR, w.spend(p.i2, 0)),
    ]


class _Counter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = rp.combined_check_holds

        def counting(checks: Sequence[rp.PreparedCheck]) -> bool:
            self.calls += 1
            return real(checks)

        monkeypatch.setattr(rp, "combined_check_holds", counting)


def test_a_block_of_bad_proofs_stops_at_the_first(
    pre: Pre, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = raw_block(pre.world, pre.store, _four_bad(pre))
    counter = _Counter(monkeypatch)
    with pytest.raises(BlockRejected) as info:
        apply_block(pre.store, block, pre.world.genesis)
    assert info.value.reason is Reason.BAD_RANGE_PROOF
    assert info.value.index == 0
    # 1 + log2(4) combined checks; full bisection took 2·4 − 1 = 7.
    assert counter.calls == 3


def test_the_lowest_bad_index_is_reported(pre: Pre) -> None:
    w = pre.world
    good = w.transfer(w.bob, USD, [w.spend(pre.t1, 0)], [w.bob.plan(100)])
    bad = _four_bad(pre)
    block = raw_block(w, pre.store, [good, bad[0], bad[3]])
    with pytest.raises(BlockRejected) as info:
        apply_block(pre.store, block, w.genesis)
    assert (info.value.reason, info.value.index) == (Reason.BAD_RANGE_PROOF, 1)


def _statement(p: Pre, tx: BuiltTx) -> RangeStatement:
    decoded = decode_tx(tx.encode(), p.world.chain_id, max_tx_bytes=1 << 16)
    statement = range_statement(decoded)
    if statement is None:
        raise AssertionError("a transfer has a range statement")
    return statement


def test_proof_cache_first_failure_maps_indices_and_caches_only_a_good_set(pre: Pre) -> None:
    w = pre.world
    goods = [
        _statement(pre, w.transfer(w.bob, USD, [w.spend(pre.t1, 0)], [w.bob.plan(100)]))
        for _ in range(3)
    ]
    bad = _statement(pre, _four_bad(pre)[0])
    calls: list[int] = []

    def spy(statements: Sequence[RangeStatement]) -> list[int]:
        calls.append(len(statements))
        return rp.batch_verify_first_failure(statements)

    cache = ProofCache(first_failure_verifier=spy)
    cache.verify(goods[0])
    assert cache.batch_verify_first_failure([goods[0], goods[1], bad, goods[2]]) == [2]
    assert calls == [3]  # the seen statement is not verified again
    assert len(cache) == 1
    assert cache.batch_verify_first_failure([goods[1], goods[0], goods[2]]) == []
    assert len(cache) == 3
    assert cache.batch_verify_first_failure(goods) == []
    assert calls == [3, 2]
