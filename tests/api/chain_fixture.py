"""A small committed chain and the txs the API tests submit against it.

Block 1: bank A issues alice two USD outputs and itself two. Block 2: alice
sends one of hers to bob, and bank A lends alice ``LOAN_PRINCIPAL`` (the loan
routes read it at height 2, and its absence at height 1). The txs built here
(once per test module: range proofs are slow in pure Python) are each valid or
invalid for exactly one reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from ledger.build import BuiltTx, build_attest, sign_tx
from ledger.loan_build import LoanKeys, build_originate
from ledger.store import MemoryStore
from ledger.tx import IssueBody, LoanTerms
from privacy import group
from tests.api.in_process_node import InProcessNode
from tests.spec.ledger_world import USD, World

LOAN_PRINCIPAL = 7_654_321_987
LOAN_TERMS = LoanTerms(rate_bps=250, period_blocks=10, maturity_height=2, purpose="api fixture")
"""Maturity 2: overdue from height 3 on, so the tip shows it active and not yet overdue."""


@dataclass
class ApiChain:
    world: World
    store: MemoryStore
    issue: BuiltTx
    """Committed in block 1."""
    transfer: BuiltTx
    """Committed in block 2; spends ``issue``'s output 0."""
    loan: BuiltTx
    """Committed in block 2 after ``transfer``: bank A lends alice; the loan id is its id."""
    fresh_issue: BuiltTx
    """Valid, not yet submitted (bank A's nonce 2)."""
    double_spend: BuiltTx
    """Spends ``issue``'s output 0 again."""
    to_unregistered: BuiltTx
    """An issue to mallory, who has no account."""
    tampered_proof: BuiltTx
    """``fresh_issue`` with block 1's range proof, re-signed: only the proof is wrong."""
    secrets: tuple[str, ...]
    """Hex/decimal strings of amounts, blindings and keys that must never be shown."""

    def attest(self, *, nonce: int = 1, label: str = "kyc") -> BuiltTx:
        return build_attest(
            self.world.bank_b.identity, self.world.chain_id, label, b"\x07" * 32, nonce=nonce
        )


def build_chain() -> ApiChain:
    world = World()
    store = world.new_store()
    node = InProcessNode(world, store)
    issue = world.issue(
        world.bank_a,
        USD,
        [
            world.alice.plan(4_242_424_242),
            world.alice.plan(5),
            world.bank_a.plan(9_876_543_210),
            world.bank_a.plan(1),
        ],
    )
    asyncio.run(node.submit(issue.encode()))
    node.commit_pending()
    transfer = world.transfer(
        world.alice,
        USD,
        [world.spend(issue, 0)],
        [world.bob.plan(4_242_424_000), world.alice.plan(242)],
    )
    loan = build_originate(
        world.bank_a.identity,
        world.alice.identity,
        world.chain_id,
        asset=USD,
        amount=LOAN_PRINCIPAL,
        terms=LOAN_TERMS,
        inputs=[world.spend(issue, 2)],
        keys=LoanKeys(world.bank_a.memo_public, world.alice.memo_public, world.auditor.memo_public),
        consent_nonce=1,
    )
    asyncio.run(node.submit(transfer.encode()))
    asyncio.run(node.submit(loan.built.encode()))
    node.commit_pending()
    if store.height() != 2 or any(
        store.tx_location(t.tx_id) is None for t in (transfer, loan.built)
    ):
        raise AssertionError("setup blocks did not commit")
    double_spend = world.transfer(
        world.alice, USD, [world.spend(issue, 0)], [world.carol.plan(4_242_424_242)]
    )
    fresh_issue = world.issue(
        world.bank_a, USD, [world.bob.plan(31_337_313_373), world.bob.plan(2)]
    )
    to_unregistered = world.issue(world.bank_a, USD, [world.mallory.plan(9)])
    body = IssueBody.decode(fresh_issue.tx.body)
    issued = IssueBody.decode(issue.tx.body)
    excess = -sum(o.blinding for o in fresh_issue.openings) % group.ORDER
    tampered_body = dataclasses.replace(body, range_proof=issued.range_proof)
    tampered_proof = sign_tx(
        world.bank_a.identity, tampered_body, world.chain_id, excess_blinding=excess
    )
    openings = [
        *issue.openings,
        *transfer.openings,
        *fresh_issue.openings,
        *loan.built.openings,
        loan.outstanding,
    ]
    secrets = tuple(
        {f"{o.blinding:064x}" for o in openings}
        | {o.blinding.to_bytes(32, "little").hex() for o in openings}
        | {"4242424242", "4242424000", "31337313373", "9876543210", str(LOAN_PRINCIPAL)}
        | {party.memo_private.hex() for party in (world.alice, world.bob, world.auditor)}
    )
    return ApiChain(
        world,
        store,
        issue,
        transfer,
        loan.built,
        fresh_issue,
        double_spend,
        to_unregistered,
        tampered_proof,
        secrets,
    )
