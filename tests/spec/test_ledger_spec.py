"""Spec tests: a pre-state, a tx or a block, and the post-state or the reason code.

Every tx case runs twice: through ``admit_tx`` (mempool admission, the proof
verified alone) and inside a one-tx block through ``apply_block`` (the proof in
the block's batch). Both must agree on the reason code.

Pre-state (committed, shared by every case; cases never commit to it):
  block 1: I1 = bank A issues USD [alice 600, alice 400]
           I2 = bank B issues EUR [carol 500]
           A1 = bank A attests (nonce 2)
  block 2: T1 = alice spends I1[0] (600) into [bob 100, alice 500]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from ledger.apply import BlockResult, apply_block
from ledger.auditor import audit
from ledger.block import Block
from ledger.build import (
    BuiltTx,
    approve,
    build_attest,
    build_register_member,
    build_set_auditor_key,
    seal_outputs,
    sign_tx,
)
from ledger.codec import Record
from ledger.memo_key import FIELD_PRIME
from ledger.mempool import PendingTxs, admit_tx
from ledger.reasons import BlockRejected, Reason, TxRejected
from ledger.rules import (
    MAX_NONCE_STEP,
    get_account,
    get_asset,
    get_clock,
    get_member,
    get_output,
    last_nonce,
    spent_by,
)
from ledger.state import StateView, state_key
from ledger.store import MemoryStore
from ledger.tx import (
    TAG_REGISTER_ACCOUNT_POP,
    TAG_REGISTER_MEMBER_POP,
    Approval,
    Approvals,
    IssueBody,
    RegisterAccountBody,
    RegisterMemberBody,
    RemoveMemberBody,
    SetAuditorKeyBody,
    TransferBody,
    Tx,
    TxOutput,
    member_pop_payload,
    output_id_of,
    pop_payload,
)
from privacy import group
from privacy.memo import Opening
from tests.spec.ledger_world import EUR, USD, Party, World, committed_blocks, raw_block
from tests.spec.test_execute_batch_spec import EXECUTE_CASE_REASONS
from tests.spec.test_loans_spec import LOAN_CASE_REASONS

# Verification runs once per multiscalar backend (tests/conftest.py): both must agree.
pytestmark = pytest.mark.usefixtures("msm_backend")

BLOCK_CASE_REASONS = {
    Reason.MALFORMED,
    Reason.DOUBLE_SPEND,
    Reason.DUPLICATE_TX,
    Reason.BAD_RANGE_PROOF,
    Reason.BAD_HEIGHT,
    Reason.BAD_PREV_HASH,
    Reason.BAD_TX_ROOT,
    Reason.BAD_PROPOSER,
    Reason.BAD_TIMESTAMP,
    Reason.BAD_STATE_ROOT,
    Reason.TOO_MANY_TXS,
    Reason.NOT_MEMBER,
}
"""Reasons the block cases below assert (each assertion checks membership here)."""


@dataclass
class Pre:
    world: World
    store: MemoryStore
    i1: BuiltTx
    i2: BuiltTx
    t1: BuiltTx
    a1: BuiltTx


@pytest.fixture(scope="module")
def pre() -> Pre:
    w = World()
    store = w.new_store()
    i1 = w.issue(w.bank_a, USD, [w.alice.plan(600), w.alice.plan(400)])
    i2 = w.issue(w.bank_b, EUR, [w.carol.plan(500)])
    a1 = build_attest(
        w.bank_a.identity, w.chain_id, "q3-report", b"\x42" * 32, nonce=w.next_nonce(w.bank_a)
    )
    w.commit(store, [i1, i2, a1])
    t1 = w.transfer(w.alice, USD, [w.spend(i1, 0)], [w.bob.plan(100), w.alice.plan(500)])
    w.commit(store, [t1])
    return Pre(w, store, i1, i2, t1, a1)


# --- helpers ----------------------------------------------------------------------------


def run_block(p: Pre, txs: list[BuiltTx | Tx], **changes: object) -> BlockResult:
    return apply_block(p.store, raw_block(p.world, p.store, txs, **changes), p.world.genesis)


def expect_tx_rejected(p: Pre, tx: BuiltTx | Tx, reason: Reason) -> None:
    envelope = tx.tx if isinstance(tx, BuiltTx) else tx
    with pytest.raises(TxRejected) as mempool:
        admit_tx(p.store, envelope.encode(), p.world.genesis)
    assert mempool.value.reason is reason, mempool.value
    with pytest.raises(BlockRejected) as block:
        run_block(p, [envelope])
    assert block.value.reason is reason, block.value
    assert block.value.index == 0


def post_state(p: Pre, txs: list[BuiltTx]) -> tuple[StateView, BlockResult]:
    """Apply ``txs`` as one valid block (right state root) and view the state after it."""
    block = p.world.propose(p.store, txs)
    result = apply_block(p.store, block, p.world.genesis)
    view = StateView(p.store)
    view.merge(result.delta)
    for built in txs:
        admit_tx(p.store, built.encode(), p.world.genesis)  # mempool agrees, one by one
    return view, result


def resign(p: Pre, signer_party: object, body: IssueBody | TransferBody, x: int) -> BuiltTx:
    identity = signer_party.identity  # type: ignore[attr-defined]
    return sign_tx(identity, body, p.world.chain_id, excess_blinding=x)


def transfer_parts(
    p: Pre, input_opening: Opening, values: list[int], owner: object | None = None
) -> tuple[tuple[TxOutput, ...], bytes, int]:
    """Sealed outputs of ``values`` and the excess blinding against one input."""
    w = p.world
    who = owner or w.alice
    plans = [who.plan(v) for v in values]  # type: ignore[attr-defined]
    sealed = seal_outputs(plans, USD, w.auditor.memo_public)
    x = (input_opening.blinding - sum(o.blinding for o in sealed.openings)) % group.ORDER
    return sealed.outputs, sealed.range_proof, x


def alice_spends_400(
    p: Pre,
    values: list[int],
    change: Callable[[TransferBody], TransferBody] = lambda body: body,
    excess_offset: int = 0,
) -> BuiltTx:
    """Alice's transfer of block 1's 400 into outputs of ``values``, its body changed by
    ``change`` before she signs it, with the excess blinding off by ``excess_offset``."""
    outputs, proof, x = transfer_parts(p, p.i1.openings[1], values)
    body = TransferBody(p.world.alice.key, USD, (p.i1.output_ids()[1],), outputs, proof)
    return resign(p, p.world.alice, change(body), (x + excess_offset) % group.ORDER)


def first_output(body: TransferBody, **changes: bytes) -> TransferBody:
    """``body`` with only its first output, that one changed by ``changes``."""
    return dataclasses.replace(body, outputs=(dataclasses.replace(body.outputs[0], **changes),))


# --- valid cases ------------------------------------------------------------------------


def test_valid_transfer_moves_value_and_tombstones_the_input(pre: Pre) -> None:
    w = pre.world
    tx = w.transfer(w.alice, USD, [w.spend(pre.i1, 1)], [w.carol.plan(150), w.alice.plan(250)])
    view, result = post_state(pre, [tx])
    spent_id = pre.i1.output_ids()[1]
    assert get_output(view, spent_id) is None
    assert spent_by(view, spent_id) == tx.tx_id
    new = [get_output(view, oid) for oid in tx.output_ids()]
    assert [o.owner for o in new if o] == [w.carol.key, w.alice.key]
    assert result.receipts[0].spent == ((spent_id, w.alice.key),)
    asset = get_asset(view, USD)
    assert asset is not None and asset.issued_total == 1000
    report = audit(
        [*committed_blocks(pre.store), _block_of(pre, tx)],
        view,
        w.chain_id,
        [w.auditor.memo_private],
    )
    assert report.ok
    assert report.per_owner[(w.carol.key, USD)] == 150
    assert report.per_owner[(w.alice.key, USD)] == 750


def _block_of(p: Pre, tx: BuiltTx) -> Block:
    return p.world.propose(p.store, [tx])


def test_valid_issue_adds_public_supply(pre: Pre) -> None:
    w = pre.world
    tx = w.issue(w.bank_a, USD, [w.bob.plan(1000)])
    view, _ = post_state(pre, [tx])
    asset = get_asset(view, USD)
    assert asset is not None and asset.issued_total == 2000
    assert get_output(view, tx.output_ids()[0]) is not None
    assert last_nonce(view, w.bank_a.key) == w.nonces[w.bank_a.key]


def test_valid_transfer_padded_to_four_outputs(pre: Pre) -> None:
    w = pre.world
    tx = w.transfer(
        w.bob, USD, [w.spend(pre.t1, 0)], [w.alice.plan(10), w.carol.plan(20), w.bob.plan(70)]
    )
    assert len(tx.openings) == 4 and tx.openings[3].value == 0
    view, _ = post_state(pre, [tx])
    assert all(get_output(view, oid) is not None for oid in tx.output_ids())


def test_valid_register_account_and_attest(pre: Pre) -> None:
    w = pre.world
    reg = w.register(w.bank_b, w.mallory, nonce=10)  # with mallory's proof of possession
    att = build_attest(w.bank_b.identity, w.chain_id, "kyc", b"\x01" * 32, nonce=11)
    view, _ = post_state(pre, [reg, att])
    account = get_account(view, w.mallory.key)
    assert account is not None and account.registered_by == w.bank_b.key
    assert account.memo_public_key == w.mallory.memo_public
    assert last_nonce(view, w.bank_b.key) == 11


def test_valid_spend_of_an_output_created_earlier_in_the_same_block(pre: Pre) -> None:
    w = pre.world
    first = w.transfer(w.alice, USD, [w.spend(pre.i1, 1)], [w.bob.plan(400)])
    second = w.transfer(w.bob, USD, [w.spend(first, 0)], [w.carol.plan(300), w.bob.plan(100)])
    view, result = post_state_block_only(pre, [first, second])
    assert get_output(view, first.output_ids()[0]) is None
    assert len(result.receipts) == 2
    assert result.owner_index_changes()[1] == (w.bob.key, first.output_ids()[0], True)


def post_state_block_only(p: Pre, txs: list[BuiltTx]) -> tuple[StateView, BlockResult]:
    block = p.world.propose(p.store, txs)
    result = apply_block(p.store, block, p.world.genesis)
    view = StateView(p.store)
    view.merge(result.delta)
    return view, result


def test_valid_governance_register_member_and_rotate_auditor(pre: Pre) -> None:
    w = pre.world
    new_asset = b"\x77" * 32
    reg = build_register_member(
        w.bank_a.identity,
        [w.bank_b.identity],
        w.chain_id,
        member_key=w.mallory.key,
        memo_public_key=w.mallory.memo_public,
        name="Bank M",
        assets=[(new_asset, "GBP.M")],
        proof_of_possession=w.member_pop(w.mallory, "Bank M"),
        nonce=20,
    )
    view, _ = post_state(pre, [reg])
    assert get_member(view, w.mallory.key) is not None
    assert get_account(view, w.mallory.key) is not None
    asset = get_asset(view, new_asset)
    assert asset is not None and asset.issuer == w.mallory.key
    # With three members the quorum is three: the same approvals no longer suffice.
    after = PendingTxs(pre.store, w.genesis)
    after.view.merge(view.delta())
    rotate = build_set_auditor_key(
        w.bank_b.identity, [w.bank_a.identity], w.chain_id, b"\x99" * 32, nonce=21
    )
    with pytest.raises(TxRejected) as info:
        admit_tx(pre.store, rotate.encode(), w.genesis, pending=after)
    assert info.value.reason is Reason.NOT_AUTHORIZED


def test_valid_nonce_gap_of_exactly_the_step(pre: Pre) -> None:
    w = pre.world
    nonce = last_nonce(pre.store, w.bank_a.key) + MAX_NONCE_STEP
    tx = build_attest(w.bank_a.identity, w.chain_id, "gap", b"\x47" * 32, nonce=nonce)
    view, _ = post_state(pre, [tx])
    assert last_nonce(view, w.bank_a.key) == nonce


def test_valid_rotate_auditor_key(pre: Pre) -> None:
    w = pre.world
    rotate = build_set_auditor_key(
        w.bank_b.identity, [w.bank_a.identity], w.chain_id, b"\x99" * 32, nonce=21
    )
    view, _ = post_state(pre, [rotate])
    assert view.get_state(state_key(b"meta", b"auditor")) == b"\x99" * 32


def test_valid_empty_block_advances_the_clock(pre: Pre) -> None:
    view, result = post_state_block_only(pre, [])
    assert get_clock(view) is not None
    assert result.receipts == ()
    assert len(result.delta) == 1


# --- invalid tx cases -------------------------------------------------------------------

TxCase = Callable[[Pre], BuiltTx | Tx]


def case_three_outputs(p: Pre) -> BuiltTx:
    return alice_spends_400(
        p, [100, 100, 100, 100], lambda b: dataclasses.replace(b, outputs=b.outputs[:3])
    )


def bank_a_issues(p: Pre, sealed_value: int, declared: int, nonce: int) -> BuiltTx:
    """Bank A's issue to alice of one output sealing ``sealed_value``, declaring ``declared``."""
    w = p.world
    sealed = seal_outputs([w.alice.plan(sealed_value)], USD, w.auditor.memo_public)
    body = IssueBody(w.bank_a.key, USD, declared, sealed.outputs, sealed.range_proof, nonce)
    return resign(p, w.bank_a, body, -sealed.openings[0].blinding)


def case_issue_zero(p: Pre) -> BuiltTx:
    return bank_a_issues(p, 0, 0, nonce=50)


def case_short_memo(p: Pre) -> BuiltTx:
    return alice_spends_400(p, [400], lambda b: first_output(b, owner_memo=b"\x00" * 10))


def case_no_inputs(p: Pre) -> BuiltTx:
    return alice_spends_400(p, [0], lambda b: dataclasses.replace(b, inputs=()))


def case_witness_on_attest(p: Pre) -> Tx:
    tx = build_attest(p.world.bank_a.identity, p.world.chain_id, "x", b"\x00" * 32, nonce=60).tx
    return dataclasses.replace(tx, witness=b"\x01")


def case_too_large(p: Pre) -> Tx:
    tx = build_attest(p.world.bank_a.identity, p.world.chain_id, "x", b"\x00" * 32, nonce=61).tx
    return dataclasses.replace(tx, witness=b"\x00" * (p.world.genesis.params.max_tx_bytes + 1))


def case_unknown_kind(p: Pre) -> Tx:
    tx = build_attest(p.world.bank_a.identity, p.world.chain_id, "x", b"\x00" * 32, nonce=62).tx
    return dataclasses.replace(tx, kind=b"veil/tx/loan_liquidate/v1")


def case_signed_by_someone_else(p: Pre) -> Tx:
    w = p.world
    honest = w.transfer(w.alice, USD, [w.spend(p.i1, 1)], [w.bob.plan(400)])
    forged = w.mallory.identity.sign(honest.tx.kind, w.chain_id, honest.tx.body)
    return dataclasses.replace(honest.tx, signature=forged)


def case_signed_for_another_chain(p: Pre) -> Tx:
    w = p.world
    tx = build_attest(w.bank_a.identity, bytes(32), "x", b"\x00" * 32, nonce=63).tx
    return tx


def case_bad_approval_signature(p: Pre) -> BuiltTx:
    w = p.world
    built = build_set_auditor_key(
        w.bank_a.identity, [w.bank_b.identity], w.chain_id, b"\x98" * 32, nonce=64
    )
    fake = Approvals((Approval(w.bank_b.key, b"\x00" * 64),)).encode()
    body = SetAuditorKeyBody.decode(built.tx.body)
    return sign_tx(w.bank_a.identity, body, w.chain_id, witness=fake)


def case_swapped_range_proof(p: Pre) -> BuiltTx:
    _, other_proof, _ = transfer_parts(p, p.i1.openings[1], [150, 250])
    return alice_spends_400(
        p, [150, 250], lambda b: dataclasses.replace(b, range_proof=other_proof)
    )


def case_garbage_range_proof(p: Pre) -> BuiltTx:
    return alice_spends_400(
        p, [400], lambda b: dataclasses.replace(b, range_proof=b.range_proof[:-32])
    )


def case_transfer_creates_value(p: Pre) -> BuiltTx:
    return alice_spends_400(p, [400, 1])


def case_transfer_wrong_excess_key(p: Pre) -> BuiltTx:
    return alice_spends_400(p, [400], excess_offset=1)


def case_issue_amount_understated(p: Pre) -> BuiltTx:
    return bank_a_issues(p, 1000, 10, nonce=70)


def case_commitment_not_a_point(p: Pre) -> BuiltTx:
    return alice_spends_400(p, [400], lambda b: first_output(b, commitment=b"\xff" * 32))


def case_unknown_input(p: Pre) -> BuiltTx:
    w = p.world
    fake = Opening(400, p.i1.openings[1].blinding, USD)
    return w.transfer(w.alice, USD, [(b"\x13" * 33, fake)], [w.alice.plan(400)])


def case_spent_in_earlier_block(p: Pre) -> BuiltTx:
    w = p.world
    return w.transfer(w.alice, USD, [w.spend(p.i1, 0)], [w.carol.plan(600)])


def case_same_input_twice(p: Pre) -> BuiltTx:
    twice = (p.i1.output_ids()[1],) * 2
    blinding = p.i1.openings[1].blinding  # the second input's, in the excess
    return alice_spends_400(p, [400], lambda b: dataclasses.replace(b, inputs=twice), blinding)


def case_spend_someone_elses_output(p: Pre) -> BuiltTx:
    w = p.world
    return w.transfer(w.bob, USD, [w.spend(p.i1, 1)], [w.bob.plan(400)])


def case_wrong_asset(p: Pre) -> BuiltTx:
    w = p.world
    oid, opening = w.spend(p.i1, 1)
    relabelled = Opening(opening.value, opening.blinding, EUR)
    return w.transfer(w.alice, EUR, [(oid, relabelled)], [w.alice.plan(400)])


def case_output_to_unregistered(p: Pre) -> BuiltTx:
    w = p.world
    return w.transfer(w.alice, USD, [w.spend(p.i1, 1)], [w.mallory.plan(400)])


def case_sender_unregistered(p: Pre) -> BuiltTx:
    w = p.world
    oid, opening = w.spend(p.i1, 1)
    return w.transfer(w.mallory, USD, [(oid, opening)], [w.alice.plan(400)])


def case_client_registers_account(p: Pre) -> BuiltTx:
    w = p.world
    return w.register(w.alice, w.mallory, nonce=1)


def case_client_attests(p: Pre) -> BuiltTx:
    return build_attest(p.world.alice.identity, p.world.chain_id, "x", b"\x00" * 32, nonce=1)


def case_wrong_issuer(p: Pre) -> BuiltTx:
    w = p.world
    return w.issue(w.bank_b, USD, [w.carol.plan(5)])


def case_client_issues(p: Pre) -> BuiltTx:
    w = p.world
    return w.issue(w.alice, USD, [w.alice.plan(5)])


def case_unknown_asset(p: Pre) -> BuiltTx:
    w = p.world
    return w.issue(w.bank_a, b"\x55" * 32, [w.alice.plan(5)])


def case_register_twice(p: Pre) -> BuiltTx:
    w = p.world
    return w.register(w.bank_b, w.alice, nonce=80, memo_public=b"\x01" * 32)


def case_register_existing_member(p: Pre) -> BuiltTx:
    w = p.world
    return build_register_member(
        w.bank_a.identity,
        [w.bank_b.identity],
        w.chain_id,
        member_key=w.bank_b.key,
        memo_public_key=b"\x01" * 32,
        name="B again",
        proof_of_possession=w.member_pop(w.bank_b, "B again", memo_public=b"\x01" * 32),
        nonce=81,
    )


def case_resubmit_committed_tx(p: Pre) -> BuiltTx:
    return p.t1


def case_resubmit_committed_attest(p: Pre) -> BuiltTx:
    return p.a1


def case_reused_nonce(p: Pre) -> BuiltTx:
    w = p.world
    return build_attest(w.bank_a.identity, w.chain_id, "other", b"\x43" * 32, nonce=2)


def case_lower_nonce(p: Pre) -> BuiltTx:
    w = p.world
    return build_attest(w.bank_a.identity, w.chain_id, "older", b"\x44" * 32, nonce=1)


def case_nonce_at_u64_max(p: Pre) -> BuiltTx:
    # The issue's lock-out: one tx with nonce 2^64 − 1 and the key could never sign again.
    w = p.world
    return build_attest(w.bank_a.identity, w.chain_id, "max", b"\x45" * 32, nonce=(1 << 64) - 1)


def case_nonce_one_past_the_step(p: Pre) -> BuiltTx:
    w = p.world
    nonce = last_nonce(p.store, w.bank_a.key) + MAX_NONCE_STEP + 1
    return build_attest(w.bank_a.identity, w.chain_id, "far", b"\x46" * 32, nonce=nonce)


def case_supply_overflow(p: Pre) -> BuiltTx:
    w = p.world
    return w.issue(w.bank_a, USD, [w.alice.plan((1 << 64) - 1)])


def case_governance_without_quorum(p: Pre) -> BuiltTx:
    w = p.world
    return build_set_auditor_key(w.bank_a.identity, [], w.chain_id, b"\x97" * 32, nonce=90)


def case_approval_by_non_member(p: Pre) -> BuiltTx:
    w = p.world
    return build_set_auditor_key(
        w.bank_a.identity, [w.alice.identity], w.chain_id, b"\x96" * 32, nonce=91
    )


def case_approval_by_proposer_twice(p: Pre) -> BuiltTx:
    w = p.world
    return build_set_auditor_key(
        w.bank_a.identity, [w.bank_a.identity], w.chain_id, b"\x95" * 32, nonce=92
    )


# --- registrations: proof of possession and memo keys -----------------------------------


def registration(p: Pre, memo_key: bytes, pop: bytes, *, registrar: Party | None = None) -> BuiltTx:
    """Bank B (or ``registrar``) registers mallory with ``memo_key`` and ``pop``, unchecked."""
    w = p.world
    party = registrar or w.bank_b
    body = RegisterAccountBody(party.key, w.mallory.key, memo_key, 110, pop)
    return sign_tx(party.identity, body, w.chain_id)


def pop_by(signer: Party, p: Pre, memo_key: bytes, *, chain_id: bytes | None = None) -> bytes:
    """``signer``'s signature over bank B registering mallory with ``memo_key``."""
    w = p.world
    payload = pop_payload(w.bank_b.key, w.mallory.key, memo_key)
    return signer.identity.sign(TAG_REGISTER_ACCOUNT_POP, chain_id or w.chain_id, payload)


def governance(p: Pre, body: Record) -> BuiltTx:
    """``body`` proposed by bank A and approved by bank B (a quorum of two), unchecked."""
    w = p.world
    unsigned = sign_tx(w.bank_a.identity, body, w.chain_id)
    approvals = Approvals((approve(w.bank_b.identity, w.chain_id, unsigned.tx_id),))
    return sign_tx(w.bank_a.identity, body, w.chain_id, witness=approvals.encode())


def u_bytes(u: int) -> bytes:
    return u.to_bytes(32, "little")


ORDER_8_U = 39382357235489614581723060781553021112529911719440698176882885853963445705823


def case_pop_by_a_different_key(p: Pre) -> BuiltTx:
    w = p.world
    return registration(p, w.mallory.memo_public, pop_by(w.carol, p, w.mallory.memo_public))


def case_pop_by_the_registrar_itself(p: Pre) -> BuiltTx:
    w = p.world
    return registration(p, w.mallory.memo_public, pop_by(w.bank_b, p, w.mallory.memo_public))


def case_pop_over_a_different_memo_key(p: Pre) -> BuiltTx:
    # The attack: bank B holds mallory's consent for her own memo key and
    # registers her with bank B's memo key instead, to read her amounts.
    w = p.world
    return registration(p, w.bank_b.memo_public, pop_by(w.mallory, p, w.mallory.memo_public))


def case_pop_from_another_chain(p: Pre) -> BuiltTx:
    w = p.world
    other_chain = bytes(31) + b""
    pop = pop_by(w.mallory, p, w.mallory.memo_public, chain_id=other_chain)
    return registration(p, w.mallory.memo_public, pop)


def case_pop_for_another_registrar(p: Pre) -> BuiltTx:
    # Mallory consented to bank B; bank A (also a member) cannot use her PoP.
    w = p.world
    pop = pop_by(w.mallory, p, w.mallory.memo_public)
    return registration(p, w.mallory.memo_public, pop, registrar=w.bank_a)


def case_pop_missing(p: Pre) -> BuiltTx:
    return registration(p, p.world.mallory.memo_public, bytes(64))


def case_register_account_all_zero_memo_key(p: Pre) -> BuiltTx:
    # A valid PoP over the bad key: the memo key itself is what is refused.
    w = p.world
    return registration(p, bytes(32), pop_by(w.mallory, p, bytes(32)))


def case_register_account_order_8_memo_key_top_bit_set(p: Pre) -> BuiltTx:
    w = p.world
    key = u_bytes(ORDER_8_U | 1 << 255)
    return registration(p, key, pop_by(w.mallory, p, key))


def case_register_member_small_order_memo_key(p: Pre) -> BuiltTx:
    w = p.world
    body = RegisterMemberBody(
        w.bank_a.key, w.mallory.key, u_bytes(FIELD_PRIME - 1), "Bank M", (), 111, bytes(64)
    )
    return governance(p, body)


def member_registration(p: Pre, member_key: bytes, pop: bytes, memo_key: bytes) -> BuiltTx:
    """Bank A proposes, bank B approves: ``member_key`` joins as "Bank M", unchecked."""
    body = RegisterMemberBody(p.world.bank_a.key, member_key, memo_key, "Bank M", (), 113, pop)
    return governance(p, body)


def case_register_member_all_zero_key(p: Pre) -> BuiltTx:
    # The issue's lock: any 32 bytes became a member that nobody can sign for.
    return member_registration(p, bytes(32), bytes(64), p.world.mallory.memo_public)


def case_register_member_small_order_key(p: Pre) -> BuiltTx:
    order_4_point = bytes(31) + b"\x80"  # y = 0, x = √−1 (sign bit set): a point of order 4
    return member_registration(p, order_4_point, bytes(64), p.world.mallory.memo_public)


def case_register_member_without_pop(p: Pre) -> BuiltTx:
    w = p.world
    return member_registration(p, w.mallory.key, bytes(64), w.mallory.memo_public)


def case_register_member_pop_by_the_proposer(p: Pre) -> BuiltTx:
    w = p.world
    payload = member_pop_payload(w.mallory.key, w.mallory.memo_public, "Bank M")
    pop = w.bank_a.identity.sign(TAG_REGISTER_MEMBER_POP, w.chain_id, payload)
    return member_registration(p, w.mallory.key, pop, w.mallory.memo_public)


def case_register_member_pop_over_another_memo_key(p: Pre) -> BuiltTx:
    # Mallory consented with her own memo key; the proposers put bank A's in.
    w = p.world
    pop = w.member_pop(w.mallory, "Bank M")
    return member_registration(p, w.mallory.key, pop, w.bank_a.memo_public)


def case_register_member_pop_as_an_account_pop(p: Pre) -> BuiltTx:
    # A PoP made for an account registration is not consent to become a member.
    w = p.world
    return member_registration(p, w.mallory.key, w.pop(w.mallory, w.bank_a), w.mallory.memo_public)


def removal(p: Pre, member_key: bytes, approvers: list[Party], proposer: Party | None = None) -> Tx:
    """``proposer`` (bank A) removes ``member_key`` with ``approvers``, unchecked."""
    w = p.world
    by = proposer or w.bank_a
    body = RemoveMemberBody(by.key, member_key, 114)
    unsigned = sign_tx(by.identity, body, w.chain_id)
    approvals = Approvals(tuple(approve(a.identity, w.chain_id, unsigned.tx_id) for a in approvers))
    return sign_tx(by.identity, body, w.chain_id, witness=approvals.encode()).tx


def case_remove_member_leaving_one(p: Pre) -> Tx:
    return removal(p, p.world.bank_b.key, [])


def case_remove_a_non_member(p: Pre) -> Tx:
    return removal(p, p.world.alice.key, [p.world.bank_b])


def case_remove_member_approved_by_itself(p: Pre) -> Tx:
    return removal(p, p.world.bank_b.key, [p.world.bank_b])


def case_remove_member_proposed_by_itself(p: Pre) -> Tx:
    w = p.world
    return removal(p, w.bank_b.key, [w.bank_a], proposer=w.bank_b)


def case_remove_member_with_a_forged_approval(p: Pre) -> Tx:
    w = p.world
    body = RemoveMemberBody(w.bank_a.key, w.alice.key, 115)
    fake = Approvals((Approval(w.bank_b.key, b"\x00" * 64),)).encode()
    return sign_tx(w.bank_a.identity, body, w.chain_id, witness=fake).tx


def case_set_auditor_small_order_key(p: Pre) -> BuiltTx:
    body = SetAuditorKeyBody(p.world.bank_a.key, u_bytes(FIELD_PRIME + 1), 112)  # = u 1
    return governance(p, body)


TX_CASES: list[tuple[TxCase, Reason]] = [
    (case_three_outputs, Reason.MALFORMED),
    (case_issue_zero, Reason.MALFORMED),
    (case_short_memo, Reason.MALFORMED),
    (case_no_inputs, Reason.MALFORMED),
    (case_witness_on_attest, Reason.MALFORMED),
    (case_approval_by_proposer_twice, Reason.MALFORMED),
    (case_too_large, Reason.TOO_LARGE),
    (case_unknown_kind, Reason.UNKNOWN_KIND),
    (case_signed_by_someone_else, Reason.BAD_SIGNATURE),
    (case_signed_for_another_chain, Reason.BAD_SIGNATURE),
    (case_bad_approval_signature, Reason.BAD_SIGNATURE),
    (case_swapped_range_proof, Reason.BAD_RANGE_PROOF),
    (case_garbage_range_proof, Reason.BAD_RANGE_PROOF),
    (case_transfer_creates_value, Reason.UNBALANCED),
    (case_transfer_wrong_excess_key, Reason.UNBALANCED),
    (case_issue_amount_understated, Reason.UNBALANCED),
    (case_commitment_not_a_point, Reason.BAD_COMMITMENT),
    (case_unknown_input, Reason.UNKNOWN_INPUT),
    (case_spent_in_earlier_block, Reason.DOUBLE_SPEND),
    (case_same_input_twice, Reason.DOUBLE_SPEND),
    (case_spend_someone_elses_output, Reason.NOT_OWNER),
    (case_wrong_asset, Reason.WRONG_ASSET),
    (case_output_to_unregistered, Reason.UNREGISTERED),
    (case_sender_unregistered, Reason.UNREGISTERED),
    (case_client_registers_account, Reason.NOT_MEMBER),
    (case_client_attests, Reason.NOT_MEMBER),
    (case_approval_by_non_member, Reason.NOT_MEMBER),
    (case_wrong_issuer, Reason.NOT_ISSUER),
    (case_client_issues, Reason.NOT_ISSUER),
    (case_unknown_asset, Reason.UNKNOWN_ASSET),
    (case_register_twice, Reason.ALREADY_REGISTERED),
    (case_register_existing_member, Reason.ALREADY_REGISTERED),
    (case_resubmit_committed_tx, Reason.DUPLICATE_TX),
    (case_resubmit_committed_attest, Reason.DUPLICATE_TX),
    (case_reused_nonce, Reason.REPLAYED),
    (case_lower_nonce, Reason.REPLAYED),
    (case_nonce_at_u64_max, Reason.NONCE_TOO_FAR),
    (case_nonce_one_past_the_step, Reason.NONCE_TOO_FAR),
    (case_supply_overflow, Reason.SUPPLY_OVERFLOW),
    (case_governance_without_quorum, Reason.NOT_AUTHORIZED),
    (case_pop_by_a_different_key, Reason.BAD_PROOF_OF_POSSESSION),
    (case_pop_by_the_registrar_itself, Reason.BAD_PROOF_OF_POSSESSION),
    (case_pop_over_a_different_memo_key, Reason.BAD_PROOF_OF_POSSESSION),
    (case_pop_from_another_chain, Reason.BAD_PROOF_OF_POSSESSION),
    (case_pop_for_another_registrar, Reason.BAD_PROOF_OF_POSSESSION),
    (case_pop_missing, Reason.BAD_PROOF_OF_POSSESSION),
    (case_register_account_all_zero_memo_key, Reason.BAD_MEMO_KEY),
    (case_register_account_order_8_memo_key_top_bit_set, Reason.BAD_MEMO_KEY),
    (case_register_member_small_order_memo_key, Reason.BAD_MEMO_KEY),
    (case_set_auditor_small_order_key, Reason.BAD_MEMO_KEY),
    (case_register_member_all_zero_key, Reason.BAD_PROOF_OF_POSSESSION),
    (case_register_member_small_order_key, Reason.BAD_PROOF_OF_POSSESSION),
    (case_register_member_without_pop, Reason.BAD_PROOF_OF_POSSESSION),
    (case_register_member_pop_by_the_proposer, Reason.BAD_PROOF_OF_POSSESSION),
    (case_register_member_pop_over_another_memo_key, Reason.BAD_PROOF_OF_POSSESSION),
    (case_register_member_pop_as_an_account_pop, Reason.BAD_PROOF_OF_POSSESSION),
    (case_remove_member_leaving_one, Reason.TOO_FEW_MEMBERS),
    (case_remove_a_non_member, Reason.NOT_MEMBER),
    (case_remove_member_approved_by_itself, Reason.MALFORMED),
    (case_remove_member_proposed_by_itself, Reason.MALFORMED),
    (case_remove_member_with_a_forged_approval, Reason.BAD_SIGNATURE),
]


@pytest.mark.parametrize(("make", "reason"), TX_CASES, ids=[c.__name__[5:] for c, _ in TX_CASES])
def test_invalid_tx(pre: Pre, make: TxCase, reason: Reason) -> None:
    expect_tx_rejected(pre, make(pre), reason)


# --- invalid block cases ----------------------------------------------------------------


def expect_block_rejected(p: Pre, block: Block, reason: Reason, index: int | None = None) -> None:
    with pytest.raises(BlockRejected) as info:
        apply_block(p.store, block, p.world.genesis)
    assert info.value.reason is reason, info.value
    assert info.value.index == index
    assert reason in BLOCK_CASE_REASONS


def test_block_double_spend_within_the_block_rejects_the_second_spend(pre: Pre) -> None:
    w = pre.world
    a = w.transfer(w.alice, USD, [w.spend(pre.i1, 1)], [w.bob.plan(400)])
    b = w.transfer(w.alice, USD, [w.spend(pre.i1, 1)], [w.carol.plan(400)])
    expect_block_rejected(pre, raw_block(w, pre.store, [a, b]), Reason.DOUBLE_SPEND, 1)
    expect_block_rejected(pre, raw_block(w, pre.store, [b, a]), Reason.DOUBLE_SPEND, 1)


def test_block_same_tx_twice(pre: Pre) -> None:
    w = pre.world
    a = build_attest(w.bank_b.identity, w.chain_id, "x", b"\x00" * 32, nonce=100)
    expect_block_rejected(pre, raw_block(w, pre.store, [a, a]), Reason.DUPLICATE_TX, 1)


def test_block_bad_range_proof_found_by_the_batch(pre: Pre) -> None:
    w = pre.world
    good = w.transfer(w.alice, USD, [w.spend(pre.i1, 1)], [w.bob.plan(400)])
    bad = case_swapped_range_proof(pre)
    other = w.transfer(w.bob, USD, [w.spend(pre.t1, 0)], [w.bob.plan(100)])
    bad_first = raw_block(w, pre.store, [other, bad])
    expect_block_rejected(pre, bad_first, Reason.BAD_RANGE_PROOF, 1)
    assert good.tx_id != bad.tx_id


def test_block_header_checks(pre: Pre) -> None:
    w, s = pre.world, pre.store
    a = build_attest(w.bank_b.identity, w.chain_id, "x", b"\x00" * 32, nonce=101)
    expect_block_rejected(pre, raw_block(w, s, [a], version=2), Reason.MALFORMED)
    expect_block_rejected(pre, raw_block(w, s, [a], height=s.height() + 2), Reason.BAD_HEIGHT)
    expect_block_rejected(pre, raw_block(w, s, [a], height=s.height()), Reason.BAD_HEIGHT)
    expect_block_rejected(pre, raw_block(w, s, [a], prev_hash=b"\x01" * 32), Reason.BAD_PREV_HASH)
    expect_block_rejected(pre, raw_block(w, s, [a], tx_root=b"\x01" * 32), Reason.BAD_TX_ROOT)
    expect_block_rejected(pre, raw_block(w, s, [a], proposer=w.bank_a.key), Reason.BAD_PROPOSER)
    expect_block_rejected(pre, raw_block(w, s, [a], view=1), Reason.BAD_PROPOSER)
    expect_block_rejected(pre, raw_block(w, s, [a], timestamp_ms=1), Reason.BAD_TIMESTAMP)
    expect_block_rejected(pre, raw_block(w, s, [a]), Reason.BAD_STATE_ROOT)


def test_block_view_one_has_the_second_validator_as_primary(pre: Pre) -> None:
    w = pre.world
    block = w.propose(pre.store, [], view=1)
    assert block.header.proposer == w.validators[1].key
    apply_block(pre.store, block, w.genesis)


def test_block_too_many_txs(pre: Pre) -> None:
    w = pre.world
    limit = w.genesis.params.max_block_txs
    a = build_attest(w.bank_b.identity, w.chain_id, "x", b"\x00" * 32, nonce=102)
    block = raw_block(w, pre.store, [a] * (limit + 1))
    expect_block_rejected(pre, block, Reason.TOO_MANY_TXS)


def test_block_with_a_bad_tx_is_rejected_whole(pre: Pre) -> None:
    w = pre.world
    good = build_attest(w.bank_b.identity, w.chain_id, "x", b"\x00" * 32, nonce=103)
    bad = case_client_attests(pre)
    expect_block_rejected(pre, raw_block(w, pre.store, [good, bad]), Reason.NOT_MEMBER, 1)


def test_execute_batch_drops_invalid_txs_and_their_dependants(pre: Pre) -> None:
    w = pre.world
    input_opening = pre.i1.openings[1]
    sealed = seal_outputs([w.bob.plan(400)], USD, w.auditor.memo_public)
    x = (input_opening.blinding - sealed.openings[0].blinding) % group.ORDER
    _, other_proof, _ = transfer_parts(pre, input_opening, [400])
    body = TransferBody(w.alice.key, USD, (pre.i1.output_ids()[1],), sealed.outputs, other_proof)
    bad = resign(pre, w.alice, body, x)
    dependant = w.transfer(
        w.bob, USD, [(output_id_of(bad.tx_id, 0), sealed.openings[0])], [w.carol.plan(400)]
    )
    valid = w.transfer(w.bob, USD, [w.spend(pre.t1, 0)], [w.carol.plan(100)])
    # Spends the same input as ``bad``: a double spend until ``bad`` is dropped.
    rival = w.transfer(w.alice, USD, [w.spend(pre.i1, 1)], [w.carol.plan(400)])
    executed = w.execute(pre.store, [bad, dependant, valid, rival])
    assert executed.block.txs == (valid.tx, rival.tx)
    assert [(r.index_in_batch, r.reason, r.payload) for r in executed.rejected] == [
        (0, Reason.BAD_RANGE_PROOF, bad.encode()),
        (1, Reason.UNKNOWN_INPUT, dependant.encode()),
    ]
    apply_block(pre.store, executed.block, w.genesis)


def test_every_reason_code_has_a_spec_case() -> None:
    covered = (
        {reason for _, reason in TX_CASES}
        | BLOCK_CASE_REASONS
        | EXECUTE_CASE_REASONS
        | LOAN_CASE_REASONS
    )
    assert set(Reason) - covered == set()


def test_there_are_more_invalid_cases_than_valid_ones() -> None:
    names = [n for n in globals() if n.startswith("test_valid_")]
    assert len(TX_CASES) >= 2 * len(names)
