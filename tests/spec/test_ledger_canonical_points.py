"""Spec cases for issue 8 §2.1: output commitments with bit 255 set.

libsodium 1.0.18 (through rbcl) decodes ``P | bit 255`` as ``P`` and ``00…80``
as the identity. Such an output used to balance (sums go through libsodium),
and then either failed only at the range proof or, for ``00…80``, made the
range-proof multiplication raise a ``GroupError`` out of ``admit_tx``,
``apply_block`` and the proposer (now ``execute_batch``). It is now ``BAD_COMMITMENT`` in the
stateless checks, the same reason on every path, and a byzantine primary's
block carrying one is rejected by honest backups.
"""

from __future__ import annotations

import dataclasses

import pytest

from ledger.apply import apply_block
from ledger.build import BuiltTx, seal_outputs
from ledger.mempool import admit_tx
from ledger.reasons import BlockRejected, Reason
from ledger.tx import TransferBody
from privacy import group
from tests.spec.ledger_world import USD, raw_block
from tests.spec.test_ledger_spec import Pre, expect_tx_rejected, pre, resign

# Verification runs once per multiscalar backend (tests/conftest.py): both must agree.
pytestmark = pytest.mark.usefixtures("msm_backend")

__all__ = ["pre"]  # the shared pre-state fixture

IDENTITY_HIGH_BIT = bytes(31) + b"\x80"


def _high_bit(point: bytes) -> bytes:
    return point[:31] + bytes([point[31] | 0x80])


def _transfer_with_output(p: Pre, index: int, make_bad: str) -> BuiltTx:
    """Alice spends I1[1] (400) into [alice 400, alice 0]; output ``index`` is then given a
    non-canonical encoding of the same group element, so the tx still balances.

    The 0 output has blinding 0: its commitment is the identity, whose bit-255
    variant is ``00…80``.
    """
    w = p.world
    r_in = p.i1.openings[1].blinding
    r_out = group.random_scalar()
    sealed = seal_outputs(
        [w.alice.plan(400), w.alice.plan(0)], USD, w.auditor.memo_public, blindings=[r_out, 0]
    )
    outputs = list(sealed.outputs)
    assert outputs[1].commitment == group.IDENTITY
    bad = IDENTITY_HIGH_BIT if make_bad == "00..80" else _high_bit(outputs[index].commitment)
    outputs[index] = dataclasses.replace(outputs[index], commitment=bad)
    body = TransferBody(
        w.alice.key, USD, (p.i1.output_ids()[1],), tuple(outputs), sealed.range_proof
    )
    return resign(p, w.alice, body, (r_in - r_out) % group.ORDER)


CASES = [(0, "bit255"), (1, "bit255"), (1, "00..80")]


@pytest.mark.parametrize(("index", "make_bad"), CASES)
def test_non_canonical_output_commitment_is_bad_commitment(
    pre: Pre, index: int, make_bad: str
) -> None:
    """admit_tx and apply_block (a byzantine primary's one-tx block) agree: BAD_COMMITMENT."""
    expect_tx_rejected(pre, _transfer_with_output(pre, index, make_bad), Reason.BAD_COMMITMENT)


def test_the_same_tx_with_canonical_encodings_is_valid(pre: Pre) -> None:
    """Control: the construction above is a valid tx until an encoding is changed."""
    w = pre.world
    r_out = group.random_scalar()
    sealed = seal_outputs(
        [w.alice.plan(400), w.alice.plan(0)], USD, w.auditor.memo_public, blindings=[r_out, 0]
    )
    body = TransferBody(
        w.alice.key, USD, (pre.i1.output_ids()[1],), sealed.outputs, sealed.range_proof
    )
    tx = resign(pre, w.alice, body, (pre.i1.openings[1].blinding - r_out) % group.ORDER)
    admit_tx(pre.store, tx.encode(), w.genesis)


@pytest.mark.parametrize(("index", "make_bad"), CASES)
def test_backups_reject_a_primarys_block_with_such_an_output(
    pre: Pre, index: int, make_bad: str
) -> None:
    w = pre.world
    good = w.transfer(w.bob, USD, [w.spend(pre.t1, 0)], [w.bob.plan(100)])
    bad = _transfer_with_output(pre, index, make_bad)
    block = raw_block(w, pre.store, [good, bad])
    with pytest.raises(BlockRejected) as info:
        apply_block(pre.store, block, w.genesis)
    assert info.value.reason is Reason.BAD_COMMITMENT
    assert info.value.index == 1


@pytest.mark.parametrize(("index", "make_bad"), CASES)
def test_execute_batch_leaves_such_a_tx_out(pre: Pre, index: int, make_bad: str) -> None:
    w = pre.world
    good = w.transfer(w.bob, USD, [w.spend(pre.t1, 0)], [w.bob.plan(100)])
    bad = _transfer_with_output(pre, index, make_bad)
    executed = w.execute(pre.store, [bad, good])
    assert [(r.index_in_batch, r.reason) for r in executed.rejected] == [(0, Reason.BAD_COMMITMENT)]
    assert executed.block.txs == (good.tx,)
    apply_block(pre.store, executed.block, w.genesis)  # the honest block is valid
