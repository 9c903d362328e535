"""Wallet scanning, balances and payments; the auditor's totals and mismatch reports."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.auditor import Auditor, audit
from ledger.build import OutputPlan, seal_outputs, sign_tx
from ledger.rules import get_asset
from ledger.tx import IssueBody
from ledger.wallet import Wallet, balances, scan_block, select_inputs
from privacy.memo import Opening, seal_memo
from tests.spec.ledger_world import EUR, USD, World, committed_blocks


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def wallet_of(world: World, name: str) -> Wallet:
    party = getattr(world, name)
    return Wallet(party.identity, party.memo_private)


def test_wallets_follow_issue_and_payments_with_change(world: World) -> None:
    store = world.new_store()
    alice, bob = wallet_of(world, "alice"), wallet_of(world, "bob")
    issue = world.issue(world.bank_a, USD, [world.alice.plan(300), world.alice.plan(200)])
    world.commit(store, [issue])
    for wallet in (alice, bob):
        wallet.scan(committed_blocks(store)[-1], world.chain_id)
    assert alice.balances() == {USD: 500}
    assert bob.balances() == {}

    pay = alice.pay(
        world.chain_id,
        USD,
        recipient=world.bob.key,
        recipient_memo_key=world.bob.memo_public,
        amount=350,
        auditor_memo_key=world.auditor.memo_public,
        note=b"invoice 7",
    )
    world.commit(store, [pay])
    block = committed_blocks(store)[-1]
    for wallet in (alice, bob):
        wallet.scan(block, world.chain_id)
    assert alice.balances() == {USD: 150}
    assert bob.balances() == {USD: 350}
    assert [o.opening.note for o in bob.unspent.values()] == [b"invoice 7"]
    assert alice.unreadable == [] and bob.unreadable == []
    # The outputs-by-owner index the store keeps agrees with the wallets.
    assert sorted(store.outputs_by_owner(world.bob.key)) == sorted(bob.unspent)
    assert sorted(store.outputs_by_owner(world.alice.key)) == sorted(alice.unspent)

    report = audit(committed_blocks(store), store, world.chain_id, [world.auditor.memo_private])
    assert report.ok
    assert report.per_owner == {(world.alice.key, USD): 150, (world.bob.key, USD): 350}
    usd = report.assets[USD]
    assert (usd.issued_total, usd.unspent_value, usd.unspent_count) == (500, 500, 2)
    assert report.assets[EUR].issued_total == 0


def test_select_inputs_and_insufficient_funds(world: World) -> None:
    issue = world.issue(world.bank_a, USD, [world.alice.plan(5), world.alice.plan(9)])
    owned = [world.owned(issue, 0), world.owned(issue, 1)]
    assert [o.value for o in select_inputs(owned, USD, 6)] == [9]
    assert [o.value for o in select_inputs(owned, USD, 10)] == [9, 5]
    assert balances(owned) == {USD: 14}
    with pytest.raises(ValueError, match="insufficient"):
        select_inputs(owned, USD, 15)
    with pytest.raises(ValueError, match="insufficient"):
        select_inputs(owned, EUR, 1)


def test_scan_reports_my_outputs_whose_memo_lies(world: World) -> None:
    """An output owned by me whose owner memo opens to a wrong amount is reported, not counted."""
    store = world.new_store()
    plans = [world.alice.plan(10), world.alice.plan(20)]
    sealed = seal_outputs(plans, USD, world.auditor.memo_public)
    lie = seal_memo(dataclasses.replace(sealed.openings[0], value=10_000), world.alice.memo_public)
    not_for_me = seal_memo(sealed.openings[1], world.bob.memo_public)
    outputs = (
        dataclasses.replace(sealed.outputs[0], owner_memo=lie),
        dataclasses.replace(sealed.outputs[1], owner_memo=not_for_me),
    )
    body = IssueBody(world.bank_a.key, USD, 30, outputs, sealed.range_proof, 1)
    x = -sum(o.blinding for o in sealed.openings)
    world.commit(store, [sign_tx(world.bank_a.identity, body, world.chain_id, excess_blinding=x)])
    block = committed_blocks(store)[-1]
    result = scan_block(block, world.chain_id, world.alice.key, world.alice.memo_private)
    assert result.received == ()
    assert sorted(reason for _, reason in result.unreadable) == [
        "OPENING_MISMATCH",
        "UNDECRYPTABLE",
    ]


def test_auditor_reports_bad_audit_memos_with_their_tx_ids(world: World) -> None:
    """Validators cannot read memos, so a lying audit memo gets on chain; the auditor finds it."""
    store = world.new_store()
    honest = world.issue(world.bank_a, USD, [world.alice.plan(40)])
    plans = [OutputPlan(world.bob.key, world.bob.memo_public, 7), world.carol.plan(3)]
    sealed = seal_outputs(plans, USD, world.auditor.memo_public)
    understated = seal_memo(
        dataclasses.replace(sealed.openings[0], value=1), world.auditor.memo_public
    )
    wrong_asset = seal_memo(
        Opening(sealed.openings[1].value, sealed.openings[1].blinding, EUR),
        world.auditor.memo_public,
    )
    unreadable = seal_memo(sealed.openings[1], world.bob.memo_public)
    body = IssueBody(
        world.bank_a.key,
        USD,
        10,
        (
            dataclasses.replace(sealed.outputs[0], audit_memo=understated),
            dataclasses.replace(sealed.outputs[1], audit_memo=wrong_asset),
        ),
        sealed.range_proof,
        world.next_nonce(world.bank_a),
    )
    x = -sum(o.blinding for o in sealed.openings)
    sneaky = sign_tx(world.bank_a.identity, body, world.chain_id, excess_blinding=x)
    body3 = dataclasses.replace(
        body,
        outputs=(dataclasses.replace(sealed.outputs[0], audit_memo=unreadable), sealed.outputs[1]),
        nonce=world.next_nonce(world.bank_a),
    )
    sneaky3 = sign_tx(world.bank_a.identity, body3, world.chain_id, excess_blinding=x)
    world.commit(store, [honest, sneaky])
    world.commit(store, [sneaky3])

    auditor = Auditor([world.auditor.memo_private])
    auditor.scan_all(committed_blocks(store), world.chain_id)
    report = auditor.report(store)
    assert not report.ok
    found = {(m.tx_id, m.reason) for m in report.mismatches}
    assert found == {
        (sneaky.tx_id, "OPENING_MISMATCH"),
        (sneaky.tx_id, "WRONG_ASSET"),
        (sneaky3.tx_id, "UNDECRYPTABLE"),
    }
    usd = report.assets[USD]
    # The commitments still balance: value was conserved, only the memos lie.
    assert usd.commitments_balance
    assert usd.issued_total == 60
    # Only the outputs with good openings are counted (40 honest + carol's 3 of sneaky3).
    assert usd.unspent_value == 43 and not usd.values_balance


def test_auditor_with_a_rotated_key_tries_every_key(world: World) -> None:
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(8)])
    world.commit(store, [issue])
    blocks = committed_blocks(store)
    assert not audit(blocks, store, world.chain_id, [world.bob.memo_private]).ok
    keys = [world.bob.memo_private, world.auditor.memo_private]
    assert audit(blocks, store, world.chain_id, keys).ok


def test_commitment_invariant_detects_a_tampered_state(world: World) -> None:
    """The point equation is checked from the state alone: change excess_sum and it breaks."""
    store = world.new_store()
    world.commit(store, [world.issue(world.bank_a, USD, [world.alice.plan(8)])])
    from ledger.rules import NS_ASSET
    from ledger.state import StateView, state_key
    from privacy.group import BASEPOINT, add

    asset = get_asset(store, USD)
    assert asset is not None
    view = StateView(store)
    forged = dataclasses.replace(asset, excess_sum=add(asset.excess_sum, BASEPOINT))
    view.put(state_key(NS_ASSET, USD), forged.encode())
    report = audit(committed_blocks(store), view, world.chain_id, [world.auditor.memo_private])
    assert not report.assets[USD].commitments_balance
    assert audit(committed_blocks(store), store, world.chain_id, [world.auditor.memo_private]).ok
