"""Attacks on the tx rules: each is one the rules must refuse (or a choice they
document), checked through mempool admission and a one-tx block alike."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from ledger.apply import apply_block
from ledger.build import (
    BuiltTx,
    approve,
    build_attest,
    build_set_auditor_key,
    seal_outputs,
    sign_tx,
)
from ledger.mempool import admit_tx
from ledger.reasons import BlockRejected, Reason, TxRejected
from ledger.rules import get_output
from ledger.store import MemoryStore
from ledger.tx import (
    MAX_INPUTS,
    Approvals,
    SetAuditorKeyBody,
    TransferBody,
    Tx,
    output_id_of,
    tx_id_of,
)
from ledger.wallet import OwnedOutput, Wallet
from privacy import group
from privacy.memo import Opening
from privacy.sigma import prove_excess
from tests.spec.ledger_world import USD, World, raw_block


@dataclasses.dataclass
class Chain:
    world: World
    store: MemoryStore
    issue: BuiltTx


@pytest.fixture(scope="module")
def chain() -> Chain:
    w = World()
    store = w.new_store()
    plans = [w.alice.plan(600), w.alice.plan(400), w.bob.plan(50), w.bob.plan(50)]
    issue = w.issue(w.bank_a, USD, plans)
    w.commit(store, [issue])
    return Chain(w, store, issue)


def expect(c: Chain, tx: BuiltTx | Tx, reason: Reason) -> None:
    envelope = tx.tx if isinstance(tx, BuiltTx) else tx
    with pytest.raises(TxRejected) as mempool:
        admit_tx(c.store, envelope.encode(), c.world.genesis)
    assert mempool.value.reason is reason, mempool.value
    with pytest.raises(BlockRejected) as block:
        apply_block(c.store, raw_block(c.world, c.store, [envelope]), c.world.genesis)
    assert block.value.reason is reason, block.value


def spend_parts(
    c: Chain, index: int, values: list[int], blindings: list[int] | None = None
) -> tuple[TransferBody, int]:
    """A transfer body spending ``issue[index]`` (alice's) into ``values`` and its x."""
    w = c.world
    opening = c.issue.openings[index]
    plans = [w.alice.plan(v) for v in values]
    sealed = seal_outputs(plans, USD, w.auditor.memo_public, blindings=blindings)
    x = (opening.blinding - sum(o.blinding for o in sealed.openings)) % group.ORDER
    body = TransferBody(
        w.alice.key, USD, (c.issue.output_ids()[index],), sealed.outputs, sealed.range_proof
    )
    return body, x


def test_transfer_with_zero_outputs_is_malformed(chain: Chain) -> None:
    body, _ = spend_parts(chain, 0, [600])
    empty = dataclasses.replace(body, outputs=())
    expect(
        chain,
        sign_tx(chain.world.alice.identity, empty, chain.world.chain_id, witness=b"\x01" * 64),
        Reason.MALFORMED,
    )


def test_range_proof_for_another_output_count_is_refused(chain: Chain) -> None:
    w = chain.world
    one, _ = spend_parts(chain, 0, [600])
    two, x_two = spend_parts(chain, 0, [300, 300])
    four, x_four = spend_parts(chain, 0, [150, 150, 150, 150])
    # Two outputs carrying the one-output proof; four carrying the two-output proof.
    for body, x, proof in ((two, x_two, one.range_proof), (four, x_four, two.range_proof)):
        forged = dataclasses.replace(body, range_proof=proof)
        expect(
            chain,
            sign_tx(w.alice.identity, forged, w.chain_id, excess_blinding=x),
            Reason.BAD_RANGE_PROOF,
        )


def test_excess_proof_moved_to_another_tx_or_chain_is_unbalanced(chain: Chain) -> None:
    w = chain.world
    body, x = spend_parts(chain, 0, [600])
    valid = sign_tx(w.alice.identity, body, w.chain_id, excess_blinding=x)
    admit_tx(chain.store, valid.encode(), w.genesis)
    # Same excess, another tx: the proof is a signature over the tx id.
    other, _ = spend_parts(chain, 0, [600])
    moved = Tx(
        valid.tx.kind,
        other.encode(),
        w.alice.identity.sign(valid.tx.kind, w.chain_id, other.encode()),
        valid.tx.witness,
    )
    expect(chain, moved, Reason.UNBALANCED)
    # The right x, but proven over the tx id this body has on another chain.
    other_chain = hashlib.sha256(b"another genesis").digest()
    foreign = prove_excess(x, tx_id_of(valid.tx.kind, valid.tx.body, other_chain))
    expect(chain, dataclasses.replace(valid.tx, witness=foreign), Reason.UNBALANCED)


def test_a_new_witness_does_not_make_a_committed_transfer_new(chain: Chain) -> None:
    w = chain.world
    store = w.new_store()
    w.commit(store, [chain.issue])
    body, x = spend_parts(chain, 1, [400])
    first = sign_tx(w.alice.identity, body, w.chain_id, excess_blinding=x)
    second = sign_tx(w.alice.identity, body, w.chain_id, excess_blinding=x)
    assert first.tx.witness != second.tx.witness and first.tx_id == second.tx_id
    with pytest.raises(BlockRejected) as info:
        apply_block(store, raw_block(w, store, [first, second]), w.genesis)
    assert (info.value.reason, info.value.index) == (Reason.DUPLICATE_TX, 1)
    w.commit(store, [first])
    with pytest.raises(TxRejected) as again:
        admit_tx(store, second.encode(), w.genesis)
    assert again.value.reason is Reason.DUPLICATE_TX


def test_identity_output_commitment_is_a_public_zero_and_accepted(chain: Chain) -> None:
    """Design: C = 0·G + 0·H is a valid commitment to 0 (its opening is public); it
    creates no value, and the excess may still not be the identity."""
    w = chain.world
    body, x = spend_parts(chain, 0, [0, 600], blindings=[0, 12345])
    assert body.outputs[0].commitment == group.IDENTITY
    built = sign_tx(w.alice.identity, body, w.chain_id, excess_blinding=x)
    _, receipt = admit_tx(chain.store, built.encode(), w.genesis)
    assert len(receipt.created) == 2
    # Spending an input into exactly its own commitment has the identity as excess.
    opening = chain.issue.openings[0]
    same = TransferBody(
        w.alice.key,
        USD,
        body.inputs,
        (
            dataclasses.replace(
                body.outputs[1], commitment=Opening(600, opening.blinding, USD).commitment()
            ),
        ),
        seal_outputs(
            [w.alice.plan(600)], USD, w.auditor.memo_public, blindings=[opening.blinding]
        ).range_proof,
    )
    forged = sign_tx(w.alice.identity, same, w.chain_id, witness=b"\x00" * 64)
    expect(chain, forged, Reason.UNBALANCED)


def test_one_nonce_counter_per_key_across_kinds(chain: Chain) -> None:
    w = chain.world
    store = w.new_store()
    w.commit(store, [build_attest(w.bank_a.identity, w.chain_id, "a", b"\x01" * 32, nonce=40)])
    for built in (
        w.register(w.bank_a, w.mallory, nonce=40),
        build_set_auditor_key(
            w.bank_a.identity, [w.bank_b.identity], w.chain_id, b"\x05" * 32, nonce=39
        ),
        w.issue(w.bank_a, USD, [w.alice.plan(1)]),  # the world's counter is at 1 < 40
    ):
        with pytest.raises(TxRejected) as info:
            admit_tx(store, built.encode(), w.genesis)
        assert info.value.reason is Reason.REPLAYED


def test_approvals_are_counted_once_per_member(chain: Chain) -> None:
    w = chain.world
    built = build_set_auditor_key(w.bank_a.identity, [], w.chain_id, b"\x06" * 32, nonce=70)
    body = SetAuditorKeyBody.decode(built.tx.body)
    # bank B approving twice is refused, not counted twice.
    twice = Approvals((approve(w.bank_b.identity, w.chain_id, built.tx_id),) * 2)
    expect(
        chain,
        sign_tx(w.bank_a.identity, body, w.chain_id, witness=twice.encode()),
        Reason.MALFORMED,
    )
    # An approval signed for another tx (here: the same body with another nonce) is refused.
    other = build_set_auditor_key(w.bank_a.identity, [], w.chain_id, b"\x06" * 32, nonce=71)
    stale = Approvals((approve(w.bank_b.identity, w.chain_id, other.tx_id),))
    expect(
        chain,
        sign_tx(w.bank_a.identity, body, w.chain_id, witness=stale.encode()),
        Reason.BAD_SIGNATURE,
    )
    # The proposer alone is one of two members: below the quorum of two.
    expect(chain, built, Reason.NOT_AUTHORIZED)


def test_outputs_of_a_rejected_block_never_reach_the_store(chain: Chain) -> None:
    w = chain.world
    body, x = spend_parts(chain, 0, [600])
    good = sign_tx(w.alice.identity, body, w.chain_id, excess_blinding=x)
    bad = dataclasses.replace(good.tx, witness=b"\x00" * 64)
    before = chain.store.state_root()
    with pytest.raises(BlockRejected):
        apply_block(
            chain.store,
            raw_block(w, chain.store, [good, w.issue(w.bank_a, USD, [w.bob.plan(1)]), bad]),
            w.genesis,
        )
    assert chain.store.state_root() == before
    assert get_output(chain.store, output_id_of(good.tx_id, 0)) is None


def test_build_transfer_refuses_more_inputs_than_the_chain_accepts(chain: Chain) -> None:
    w = chain.world
    fake = [(bytes([i]) * 33, Opening(1, 1, USD)) for i in range(MAX_INPUTS + 1)]
    with pytest.raises(ValueError, match="inputs"):
        w.transfer(w.alice, USD, fake, [w.bob.plan(MAX_INPUTS + 1)])


def test_wallet_never_selects_more_inputs_than_a_transfer_holds(chain: Chain) -> None:
    w = chain.world
    wallet = Wallet(w.alice.identity, w.alice.memo_private)
    for i in range(MAX_INPUTS + 1):
        opening = Opening(1, i + 1, USD)
        wallet.unspent[bytes([i]) * 33] = OwnedOutput(
            bytes([i]) * 33, bytes(32), opening.commitment(), opening
        )
    with pytest.raises(ValueError, match="inputs"):
        wallet.pay(
            w.chain_id,
            USD,
            recipient=w.bob.key,
            recipient_memo_key=w.bob.memo_public,
            amount=MAX_INPUTS + 1,
            auditor_memo_key=w.auditor.memo_public,
        )
