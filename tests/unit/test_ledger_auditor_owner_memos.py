"""The auditor checks that each output's OWNER memo opens for its owner (issue 8, §2.3).

The review's case: an owner memo sealed to the wrong key beside an honest
audit memo passed, and the auditor credited the recipient, who could never
open or spend the output. Each case below issues one output to bob built the
honest way except for the memo named, commits it (validators cannot read
memos, so the chain accepts it) and asks the auditor and bob's wallet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from nacl.utils import random as random_bytes

from ledger.auditor import Auditor, AuditReport
from ledger.build import BuiltTx, OutputPlan, seal_outputs, sign_tx
from ledger.memo_binding import (
    audit_opening,
    disclosed_ephemeral_secret,
    owner_memo_problem,
    seal_owner_memo,
    seal_with_ephemeral,
)
from ledger.store import MemoryStore
from ledger.tx import IssueBody, TxOutput, output_id_of
from ledger.wallet import Wallet
from privacy import group
from privacy.memo import Opening, open_memo, seal_memo
from tests.spec.ledger_world import USD, World, committed_blocks

Memos = Callable[[World, Opening], tuple[bytes, bytes]]
"""(world, bob's true opening) -> (owner memo, audit memo)."""


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def issue_to_bob(world: World, store: MemoryStore, memos: Memos | None) -> BuiltTx:
    plan = OutputPlan(world.bob.key, world.bob.memo_public, 70, b"invoice 7")
    sealed = seal_outputs([plan], USD, world.auditor.memo_public)
    output = sealed.outputs[0]
    if memos is not None:
        owner_memo, audit_memo = memos(world, sealed.openings[0])
        output = TxOutput(output.owner, output.commitment, owner_memo, audit_memo)
    body = IssueBody(
        world.bank_a.key, USD, 70, (output,), sealed.range_proof, world.next_nonce(world.bank_a)
    )
    built = sign_tx(
        world.bank_a.identity, body, world.chain_id, excess_blinding=-sealed.openings[0].blinding
    )
    world.commit(store, [built])  # no reason code: the chain cannot see memos
    return built


@dataclass
class Outcome:
    report: AuditReport
    auditor: Auditor
    bob: Wallet
    tx_id: bytes


def audit_and_scan(world: World, memos: Memos | None) -> Outcome:
    store = world.new_store()
    built = issue_to_bob(world, store, memos)
    auditor = Auditor([world.auditor.memo_private])
    auditor.scan_all(committed_blocks(store), world.chain_id)
    bob = Wallet(world.bob.identity, world.bob.memo_private)
    for block in committed_blocks(store):
        bob.scan(block, world.chain_id)
    return Outcome(auditor.report(store), auditor, bob, built.tx_id)


def bound_to(owner_key: bytes, opening: Opening, auditor_key: bytes) -> tuple[bytes, bytes]:
    """A sender following the disclosure protocol, sealing the owner memo to ``owner_key``."""
    owner_memo, secret = seal_owner_memo(opening, owner_key)
    return owner_memo, seal_memo(audit_opening(opening, secret), auditor_key)


def wrong_key_bound(w: World, opening: Opening) -> tuple[bytes, bytes]:
    return bound_to(w.carol.memo_public, opening, w.auditor.memo_public)


def wrong_key_unbound(w: World, opening: Opening) -> tuple[bytes, bytes]:
    # exactly the review's memo pair: plain sealed boxes, the owner's to carol's key
    return seal_memo(opening, w.carol.memo_public), seal_memo(opening, w.auditor.memo_public)


def right_key_wrong_amount(w: World, opening: Opening) -> tuple[bytes, bytes]:
    lie = dataclasses.replace(opening, value=opening.value + 1)
    owner_memo, secret = seal_owner_memo(lie, w.bob.memo_public)
    return owner_memo, seal_memo(audit_opening(opening, secret), w.auditor.memo_public)


def disclosed_key_of_another_box(w: World, opening: Opening) -> tuple[bytes, bytes]:
    owner_memo, _ = seal_owner_memo(opening, w.bob.memo_public)
    other = random_bytes(32)
    return owner_memo, seal_memo(audit_opening(opening, other), w.auditor.memo_public)


def right_key_wrong_blinding(w: World, opening: Opening) -> tuple[bytes, bytes]:
    lie = dataclasses.replace(opening, blinding=(opening.blinding + 1) % group.ORDER)
    owner_memo, secret = seal_owner_memo(lie, w.bob.memo_public)
    return owner_memo, seal_memo(audit_opening(opening, secret), w.auditor.memo_public)


def honest_but_unbound(w: World, opening: Opening) -> tuple[bytes, bytes]:
    return seal_memo(opening, w.bob.memo_public), seal_memo(opening, w.auditor.memo_public)


def test_an_honest_output_is_credited_and_its_owner_note_read(world: World) -> None:
    out = audit_and_scan(world, None)
    assert out.report.ok and out.report.mismatches == ()
    assert out.report.per_owner == {(world.bob.key, USD): 70}
    assert out.bob.balances() == {USD: 70}
    # the disclosure lets the auditor read the owner memo, note included
    assert out.auditor.openings[output_id_of(out.tx_id, 0)].note == b"invoice 7"


@pytest.mark.parametrize(
    ("memos", "reason"),
    [
        (wrong_key_bound, "OWNER_MEMO_MISMATCH"),
        (wrong_key_unbound, "OWNER_MEMO_UNBOUND"),
        (right_key_wrong_amount, "OWNER_MEMO_MISMATCH"),
        (right_key_wrong_blinding, "OWNER_MEMO_MISMATCH"),
    ],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_a_lying_owner_memo_is_reported_and_not_credited(
    world: World, memos: Memos, reason: str
) -> None:
    out = audit_and_scan(world, memos)
    assert not out.report.ok
    assert [(m.tx_id, m.reason) for m in out.report.mismatches] == [(out.tx_id, reason)]
    assert out.report.per_owner == {}  # bob is credited with nothing
    usd = out.report.assets[USD]
    assert usd.unspent_value == 70 and usd.values_balance  # the value exists (audit memo)
    # and bob's wallet agrees he cannot use it
    assert out.bob.balances() == {}
    assert len(out.bob.unreadable) == 1


def test_a_false_disclosure_is_reported_even_if_the_owner_memo_is_honest(world: World) -> None:
    """The auditor checks what the sender disclosed: a key of another box proves nothing,
    so the output is reported (bob happens to be able to open it)."""
    out = audit_and_scan(world, disclosed_key_of_another_box)
    assert [(m.tx_id, m.reason) for m in out.report.mismatches] == [
        (out.tx_id, "OWNER_MEMO_MISMATCH")
    ]
    assert out.report.per_owner == {}
    assert out.bob.balances() == {USD: 70}


def test_an_honest_owner_memo_without_the_disclosure_cannot_be_told_from_a_lie(
    world: World,
) -> None:
    """Documented limit: without the disclosed key the auditor cannot check the owner
    memo, so it reports the output as unverifiable, even when bob can open it."""
    out = audit_and_scan(world, honest_but_unbound)
    assert [(m.tx_id, m.reason) for m in out.report.mismatches] == [
        (out.tx_id, "OWNER_MEMO_UNBOUND")
    ]
    assert out.report.per_owner == {}
    assert out.bob.balances() == {USD: 70}


def test_the_owner_memo_is_a_standard_sealed_box(world: World) -> None:
    opening = Opening(5, 7, USD, b"n")
    memo, secret = seal_owner_memo(opening, world.bob.memo_public)
    assert open_memo(memo, world.bob.memo_private, opening.commitment()) == opening
    assert seal_with_ephemeral(opening.encode(), world.bob.memo_public, secret) == memo
    audit = audit_opening(opening, secret)
    assert disclosed_ephemeral_secret(audit) == secret
    assert owner_memo_problem(memo, world.bob.memo_public, audit) == ("", opening)
    assert owner_memo_problem(memo, world.carol.memo_public, audit)[0] == "OWNER_MEMO_MISMATCH"
    assert owner_memo_problem(memo, world.bob.memo_public, opening)[0] == "OWNER_MEMO_UNBOUND"
    assert owner_memo_problem(b"\x00" * 10, world.bob.memo_public, audit)[0] == (
        "OWNER_MEMO_MISMATCH"
    )
