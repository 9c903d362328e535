"""The mempool and loan txs whose range statements come from the pending state."""

from __future__ import annotations

import pytest

from ledger.loan_build import build_repay
from ledger.mempool import PendingTxs, verify_statement
from ledger.reasons import Reason, TxRejected
from ledger.tx import decode_envelope
from tests.spec.ledger_world import USD
from tests.spec.test_loans_spec import keys, repay, setup


def test_accept_verifies_a_derived_statement_that_changed_since_the_precheck() -> None:
    """Two repays of one loan prechecked together: each proof holds on its own, but
    after the first is accepted the second's C_out − C_pay is another commitment,
    whose proof accept must verify (and refuse) rather than take the stale one."""
    p = setup()
    w = p.world
    first = repay(p, 100).built
    second = build_repay(
        w.alice.identity,
        w.chain_id,
        loan_id=p.loan.tx_id,
        lender=w.bank_a.key,
        asset=USD,
        amount=100,
        outstanding=p.principal,
        inputs=[(p.loan.output_ids()[0], p.loan.openings[0])],  # the disbursement
        keys=keys(w, w.bank_a, w.alice),
    ).built
    pending = PendingTxs(p.store, w.genesis)
    checked = [pending.precheck(decode_envelope(t.tx, w.chain_id)) for t in (first, second)]
    for c in checked:
        assert len(c.statements) == 2  # the outputs' proof and outstanding' ≥ 0
        for statement in c.statements:
            verify_statement(statement, None)
    pending.accept(checked[0])
    with pytest.raises(TxRejected) as info:
        pending.accept(checked[1])
    assert info.value.reason is Reason.BAD_RANGE_PROOF
