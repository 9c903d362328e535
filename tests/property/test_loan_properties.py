"""Properties of the proofs a borrower shows off chain (issue 11).

A chain where alice owes bank A two USD loans (one accrued once) and bank B one
EUR loan: the exposure proof the wallet makes verifies for every limit at or
above the true total, none exists below it, and changing any field of its
context (chain, borrower, height, limit, loan ids) breaks it. Credit reports
and minimum-balance proofs hold only if every part matches the chain.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.credit_report import (
    STATUS_ACTIVE,
    STATUS_CLOSED,
    make_report,
    public_record,
    report_problem,
    verify_report_bytes,
)
from ledger.exposure import (
    ExposureProof,
    ProofRefusedError,
    exposure_problem,
    min_balance_problem,
    prove_exposure,
    prove_min_balance,
)
from ledger.loan_build import LoanKeys, build_accrue, build_close, build_originate, build_repay
from ledger.loan_scan import LoanTracker
from ledger.loans import get_loan, interest_for
from ledger.store import MemoryStore
from ledger.tx import LoanTerms
from privacy.memo import Opening
from tests.spec.ledger_world import EUR, USD, Party, World, committed_blocks
from tests.spec.test_loans_spec import PRINCIPAL
from tests.spec.test_loans_spec import TERMS as SPEC_TERMS
from tests.spec.test_loans_spec import accrue as spec_accrue
from tests.spec.test_loans_spec import repay as spec_repay
from tests.spec.test_loans_spec import setup as spec_setup

FIXTURE_OK = [HealthCheck.function_scoped_fixture]  # the module chain is read-only here
TERMS = LoanTerms(rate_bps=250, period_blocks=1, maturity_height=2, purpose="inventory")


@dataclass
class Chain:
    world: World
    store: MemoryStore
    openings: dict[bytes, Opening]
    total: int
    alice_funds: dict[bytes, Opening]


def _keys(w: World, lender: Party) -> LoanKeys:
    return LoanKeys(lender.memo_public, w.alice.memo_public, w.auditor.memo_public)


def build_chain() -> Chain:
    w = World()
    store = w.new_store()
    usd = w.issue(w.bank_a, USD, [w.bank_a.plan(5_000), w.bank_a.plan(5_000)])
    eur = w.issue(w.bank_b, EUR, [w.bank_b.plan(9_000), w.alice.plan(700)])
    w.commit(store, [usd, eur])
    loans = []
    for nonce, (bank, funds, asset, amount) in enumerate(
        [(w.bank_a, usd, USD, 1_200), (w.bank_a, usd, USD, 800), (w.bank_b, eur, EUR, 2_500)],
        start=1,
    ):
        index = 1 if nonce == 2 else 0
        loans.append(
            build_originate(
                bank.identity,
                w.alice.identity,
                w.chain_id,
                asset=asset,
                amount=amount,
                terms=TERMS,
                inputs=[w.spend(funds, index)],
                keys=_keys(w, bank),
                consent_nonce=nonce,
            )
        )
    w.commit(store, [loan.built for loan in loans])
    openings = {loan.built.tx_id: loan.outstanding for loan in loans}
    first = loans[0].built.tx_id
    accrued = build_accrue(
        w.bank_a.identity,
        w.chain_id,
        loan_id=first,
        period=1,
        rate_bps=TERMS.rate_bps,
        outstanding=openings[first],
        keys=_keys(w, w.bank_a),
    )
    w.commit(store, [accrued.built])
    openings[first] = accrued.outstanding
    total = sum(o.value for o in openings.values())
    alice_funds = {eur.output_ids()[1]: eur.openings[1]}
    for loan in loans:  # the disbursements are alice's outputs too
        alice_funds[loan.built.output_ids()[0]] = loan.built.openings[0]
    return Chain(w, store, openings, total, alice_funds)


@pytest.fixture(scope="module")
def chain() -> Chain:
    return build_chain()


def prove(c: Chain, limit: int) -> ExposureProof:
    return prove_exposure(c.store, c.world.chain_id, c.world.alice.key, limit, openings=c.openings)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(slack=st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_every_exposure_proof_the_wallet_makes_verifies(chain: Chain, slack: int) -> None:
    limit = min(chain.total + slack, (1 << 64) - 1)
    proof = prove(chain, limit)
    assert exposure_problem(chain.store, chain.world.chain_id, proof) is None
    assert len(proof.loan_ids) == 3


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(short=st.integers(min_value=1, max_value=10_000))
def test_no_proof_verifies_below_the_true_total(chain: Chain, short: int) -> None:
    limit = max(chain.total - short, 0)
    with pytest.raises(ProofRefusedError):
        prove(chain, limit)
    # A real proof for the true total, relabelled with the lower limit, fails.
    honest = prove(chain, chain.total)
    assert (
        exposure_problem(
            chain.store, chain.world.chain_id, dataclasses.replace(honest, limit=limit)
        )
        == "BAD_PROOF"
    )


def test_changing_any_context_field_breaks_the_proof(chain: Chain) -> None:
    w = chain.world
    honest = prove(chain, chain.total + 5)
    changed = {
        "chain_id": dataclasses.replace(honest, chain_id=bytes(32)),
        "borrower": dataclasses.replace(honest, borrower=w.bob.key),
        "height": dataclasses.replace(honest, height=honest.height - 1),
        "limit": dataclasses.replace(honest, limit=honest.limit + 1),
        "dropped loan": dataclasses.replace(honest, loan_ids=honest.loan_ids[1:]),
        "reordered": dataclasses.replace(honest, loan_ids=honest.loan_ids[::-1]),
        "proof": dataclasses.replace(honest, proof=prove(chain, chain.total + 6).proof),
    }
    for field, proof in changed.items():
        assert exposure_problem(chain.store, w.chain_id, proof) is not None, field


def test_a_proof_from_a_stale_height_or_with_a_missing_opening_is_refused() -> None:
    c = build_chain()
    w = c.world
    stale = prove(c, c.total)
    w.commit(c.store, [w.issue(w.bank_a, USD, [w.bob.plan(1)])])
    assert exposure_problem(c.store, w.chain_id, stale).startswith("WRONG_HEIGHT")  # type: ignore[union-attr]
    missing = dict(list(c.openings.items())[1:])
    with pytest.raises(ProofRefusedError):
        prove_exposure(c.store, w.chain_id, w.alice.key, c.total, openings=missing)
    assert exposure_problem(c.store, w.chain_id, prove(c, c.total)) is None


def test_credit_report_verifies_and_any_change_breaks_it(chain: Chain) -> None:
    w = chain.world
    funds = {k: v for k, v in chain.alice_funds.items() if v.asset == EUR}
    balance = prove_min_balance(
        chain.store, w.chain_id, w.alice.key, asset=EUR, minimum=3_000, outputs=funds
    )
    assert min_balance_problem(chain.store, w.chain_id, balance) is None
    report = make_report(chain.store, prove(chain, chain.total), balance)
    assert [e.status for e in report.record] == ["overdue"] * 3  # height 3 > maturity 2
    assert verify_report_bytes(chain.store, w.chain_id, report.encode()) is None
    entry = dataclasses.replace(report.record[0], status=STATUS_ACTIVE)
    hidden = dataclasses.replace(report, record=(entry, *report.record[1:]))
    assert report_problem(chain.store, w.chain_id, hidden) is not None
    shorter = dataclasses.replace(report, record=report.record[1:])
    assert report_problem(chain.store, w.chain_id, shorter) is not None
    higher = dataclasses.replace(balance, minimum=3_201)
    assert min_balance_problem(chain.store, w.chain_id, higher) == "BAD_PROOF"
    with pytest.raises(ProofRefusedError):
        prove_min_balance(
            chain.store, w.chain_id, w.alice.key, asset=EUR, minimum=3_201, outputs=funds
        )
    bob_balance = dataclasses.replace(balance, owner=w.bob.key)
    assert (
        report_problem(
            chain.store, w.chain_id, dataclasses.replace(report, min_balance=(bob_balance,))
        )
        == "min balance: WRONG_OWNER"
    )
    assert verify_report_bytes(chain.store, w.chain_id, b"\x93junk").startswith("MALFORMED")  # type: ignore[union-attr]


def test_a_closed_loan_leaves_the_exposure_but_stays_in_the_record() -> None:
    c = build_chain()
    w = c.world
    # Alice repays bank B's EUR loan in full out of its own disbursement, then closes it.
    loan_id = next(lid for lid, o in c.openings.items() if o.asset == EUR)
    disbursement = next(oid for oid, o in c.alice_funds.items() if oid[:32] == loan_id)
    paid = build_repay(
        w.alice.identity,
        w.chain_id,
        loan_id=loan_id,
        lender=w.bank_b.key,
        asset=EUR,
        amount=c.openings[loan_id].value,
        outstanding=c.openings[loan_id],
        inputs=[(disbursement, c.alice_funds[disbursement])],
        keys=_keys(w, w.bank_b),
    )
    w.commit(c.store, [paid.built])
    close = build_close(w.alice.identity, w.chain_id, loan_id=loan_id, outstanding=paid.outstanding)
    w.commit(c.store, [close])
    rest = {k: v for k, v in c.openings.items() if k != loan_id}
    limit = sum(o.value for o in rest.values())
    proof = prove_exposure(c.store, w.chain_id, w.alice.key, limit, openings=rest)
    assert exposure_problem(c.store, w.chain_id, proof) is None and len(proof.loan_ids) == 2
    statuses = {e.loan_id: e.status for e in public_record(c.store, w.alice.key)}
    assert statuses[loan_id] == STATUS_CLOSED and len(statuses) == 3


@settings(max_examples=3, deadline=None)
@given(
    steps=st.lists(
        st.one_of(st.just(-1), st.integers(min_value=0, max_value=400)), min_size=2, max_size=4
    )
)
def test_random_lifecycles_keep_outstanding_in_the_auditors_view(steps: list[int]) -> None:
    """-1 accrues the next period, n ≥ 0 repays n (capped at the outstanding); after
    every block the auditor's scan gives principal + interest − repaid."""
    p = spec_setup()
    w = p.world
    opening, expected, period = p.principal, PRINCIPAL, 0
    inputs = [w.spend(p.funds, 1)]
    for step in steps:
        if step < 0:
            period += 1
            built = spec_accrue(p, period=period, outstanding=opening)
            expected += interest_for(expected, SPEC_TERMS.rate_bps)
        else:
            amount = min(step, opening.value)
            built = spec_repay(p, amount, outstanding=opening, inputs=inputs)
            expected -= amount
            inputs = [(built.built.output_ids()[1], built.built.openings[1])]
        w.commit(p.store, [built.built])
        opening = built.outstanding
        auditor = LoanTracker("auditor", w.auditor.memo_private)
        auditor.scan_all(committed_blocks(p.store), w.chain_id)
        seen = auditor.loans[p.loan.tx_id].outstanding
        assert seen is not None and seen.value == expected
        assert seen.commitment() == get_loan(p.store, p.loan.tx_id).outstanding  # type: ignore[union-attr]
