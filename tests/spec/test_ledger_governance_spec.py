"""Spec tests for member admission and removal on a three-member chain.

Pre-state: the spec world's banks A and B, then block 1 admits mallory as
"Bank M" (with her proof of possession and an asset GBP.M) and block 2 has
her issue 50 GBP.M to herself. Three members: every governance quorum is 3,
a removal's quorum is 2 of the other two.

The issue's lock (§2.4): with three members, one that never signs (a lost key,
or before this fix any 32 bytes registered as a member) made every governance
tx ``NOT_AUTHORIZED`` for good. Now the other two can remove it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ledger.apply import apply_block
from ledger.build import (
    BuiltTx,
    build_attest,
    build_register_member,
    build_remove_member,
    build_set_auditor_key,
)
from ledger.mempool import admit_tx
from ledger.reasons import BlockRejected, Reason, TxRejected
from ledger.rules import MIN_MEMBERS, get_account, get_member, members, removal_quorum
from ledger.state import StateView
from ledger.store import MemoryStore
from tests.spec.ledger_world import World, raw_block

GBP_M = b"\x77" * 32


@dataclass
class Chain:
    world: World
    store: MemoryStore
    minted: BuiltTx


def three_members() -> Chain:
    w = World()
    store = w.new_store()
    admit = build_register_member(
        w.bank_a.identity,
        [w.bank_b.identity],
        w.chain_id,
        member_key=w.mallory.key,
        memo_public_key=w.mallory.memo_public,
        name="Bank M",
        assets=[(GBP_M, "GBP.M")],
        proof_of_possession=w.member_pop(w.mallory, "Bank M"),
        nonce=w.next_nonce(w.bank_a),
    )
    w.commit(store, [admit])
    minted = w.issue(w.mallory, GBP_M, [w.mallory.plan(50)])
    w.commit(store, [minted])
    assert len(members(store)) == 3
    return Chain(w, store, minted)


@pytest.fixture
def chain() -> Chain:
    return three_members()


def remove_mallory(c: Chain, approvers: list[object]) -> BuiltTx:
    w = c.world
    return build_remove_member(
        w.bank_a.identity,
        [a.identity for a in approvers],  # type: ignore[attr-defined]
        w.chain_id,
        member_key=w.mallory.key,
        nonce=w.next_nonce(w.bank_a),
    )


def expect_rejected(c: Chain, built: BuiltTx, reason: Reason) -> None:
    with pytest.raises(TxRejected) as mempool:
        admit_tx(c.store, built.encode(), c.world.genesis)
    assert mempool.value.reason is reason, mempool.value
    with pytest.raises(BlockRejected) as block:
        apply_block(c.store, raw_block(c.world, c.store, [built]), c.world.genesis)
    assert block.value.reason is reason, block.value


def rotate_auditor(c: Chain, key_byte: int) -> BuiltTx:
    w = c.world
    return build_set_auditor_key(
        w.bank_a.identity,
        [w.bank_b.identity],
        w.chain_id,
        bytes([key_byte]) * 32,
        nonce=w.next_nonce(w.bank_a),
    )


def test_quorums() -> None:
    assert MIN_MEMBERS == 2
    assert [removal_quorum(n) for n in (3, 4, 5, 7)] == [2, 3, 3, 5]


def test_valid_the_other_two_remove_a_member_that_never_signs(chain: Chain) -> None:
    c, w = chain, chain.world
    expect_rejected(c, rotate_auditor(c, 0x31), Reason.NOT_AUTHORIZED)  # 2 of 3, need 3
    w.commit(c.store, [remove_mallory(c, [w.bank_b])])
    assert get_member(c.store, w.mallory.key) is None
    assert members(c.store) == sorted([w.bank_a.key, w.bank_b.key])
    account = get_account(c.store, w.mallory.key)
    assert account is not None and account.memo_public_key == w.mallory.memo_public
    # every quorum is now counted over the two that remain
    w.commit(c.store, [rotate_auditor(c, 0x32)])
    # the removed bank keeps its account and can still spend what it holds
    pay = w.transfer(w.mallory, GBP_M, [w.spend(c.minted, 0)], [w.alice.plan(50)])
    w.commit(c.store, [pay])


def test_a_removal_by_one_of_the_other_two_is_not_authorized(chain: Chain) -> None:
    expect_rejected(chain, remove_mallory(chain, []), Reason.NOT_AUTHORIZED)


def test_a_removal_approved_by_a_non_member_is_refused(chain: Chain) -> None:
    expect_rejected(chain, remove_mallory(chain, [chain.world.alice]), Reason.NOT_MEMBER)


def test_a_removed_member_no_longer_acts_as_one(chain: Chain) -> None:
    c, w = chain, chain.world
    w.commit(c.store, [remove_mallory(c, [w.bank_b])])
    expect_rejected(c, w.issue(w.mallory, GBP_M, [w.alice.plan(5)]), Reason.NOT_MEMBER)
    attest = build_attest(w.mallory.identity, w.chain_id, "x", b"\x01" * 32, nonce=50)
    expect_rejected(c, attest, Reason.NOT_MEMBER)
    approved_by_her = build_set_auditor_key(
        w.bank_a.identity,
        [w.bank_b.identity, w.mallory.identity],
        w.chain_id,
        b"\x33" * 32,
        nonce=w.next_nonce(w.bank_a),
    )
    expect_rejected(c, approved_by_her, Reason.NOT_MEMBER)
    expect_rejected(c, remove_mallory(c, [w.bank_b]), Reason.NOT_MEMBER)  # not twice
    again = build_register_member(
        w.bank_a.identity,
        [w.bank_b.identity],
        w.chain_id,
        member_key=w.mallory.key,
        memo_public_key=w.mallory.memo_public,
        name="Bank M",
        proof_of_possession=w.member_pop(w.mallory, "Bank M"),
        nonce=w.next_nonce(w.bank_a),
    )
    expect_rejected(c, again, Reason.ALREADY_REGISTERED)  # her key stays an account


def test_a_removal_may_not_leave_a_single_member(chain: Chain) -> None:
    c, w = chain, chain.world
    w.commit(c.store, [remove_mallory(c, [w.bank_b])])
    last = build_remove_member(
        w.bank_a.identity, [], w.chain_id, member_key=w.bank_b.key, nonce=w.next_nonce(w.bank_a)
    )
    expect_rejected(c, last, Reason.TOO_FEW_MEMBERS)


def test_the_builders_refuse_what_the_chain_refuses(chain: Chain) -> None:
    w = chain.world
    with pytest.raises(ValueError, match="neither proposes nor approves"):
        build_remove_member(
            w.bank_a.identity, [w.mallory.identity], w.chain_id, member_key=w.mallory.key, nonce=1
        )
    with pytest.raises(ValueError, match="proof of possession"):
        build_register_member(
            w.bank_a.identity,
            [w.bank_b.identity],
            w.chain_id,
            member_key=w.carol.key,
            memo_public_key=w.carol.memo_public,
            name="Bank C",
            proof_of_possession=w.member_pop(w.carol, "another name"),
            nonce=1,
        )


def test_the_removal_changes_only_the_member_record(chain: Chain) -> None:
    c, w = chain, chain.world
    removal = remove_mallory(c, [w.bank_b])
    result = apply_block(c.store, w.propose(c.store, [removal]), w.genesis)
    view = StateView(c.store)
    view.merge(result.delta)
    changed = {key for key in result.delta if not key.startswith((b"meta:", b"nonce:"))}
    assert changed == {b"member:" + w.mallory.key}
    assert result.delta[b"member:" + w.mallory.key] is None
