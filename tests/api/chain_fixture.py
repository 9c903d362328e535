"""A small committed chain and the txs the API tests submit against it.

Block 1: bank A issues alice two USD outputs. Block 2: alice sends one of
them to bob. The txs built here (once per test module: range proofs are
slow in pure Python) are each valid or invalid for exactly one reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from ledger.build import BuiltTx, build_attest, sign_tx
from ledger.store import MemoryStore
from ledger.tx import IssueBody
from privacy import group
from tests.api.in_process_node import InProcessNode
from tests.spec.ledger_world import USD, World


@dataclass
class ApiChain:
    world: World
    store: MemoryStore
    issue: BuiltTx
    """Committed in block 1."""
    transfer: BuiltTx
    """Committed in block 2; spends ``issue``'s output 0."""
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
    issue = world.issue(world.bank_a, USD, [world.alice.plan(4_242_424_242), world.alice.plan(5)])
    asyncio.run(node.submit(issue.encode()))
    node.commit_pending()
    transfer = world.transfer(
        world.alice,
        USD,
        [world.spend(issue, 0)],
        [world.bob.plan(4_242_424_000), world.alice.plan(242)],
    )
    asyncio.run(node.submit(transfer.encode()))
    node.commit_pending()
    if store.height() != 2 or store.tx_location(transfer.tx_id) is None:
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
    openings = [*issue.openings, *transfer.openings, *fresh_issue.openings]
    secrets = tuple(
        {f"{o.blinding:064x}" for o in openings}
        | {o.blinding.to_bytes(32, "little").hex() for o in openings}
        | {"4242424242", "4242424000", "31337313373"}
        | {party.memo_private.hex() for party in (world.alice, world.bob, world.auditor)}
    )
    return ApiChain(
        world,
        store,
        issue,
        transfer,
        fresh_issue,
        double_spend,
        to_unregistered,
        tampered_proof,
        secrets,
    )
