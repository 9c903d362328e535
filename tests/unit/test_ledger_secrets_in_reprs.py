"""No secret (memo private key, blinding, signing seed) in the repr of a ledger object.

Reprs end up in logs, tracebacks and assertion messages; a wallet or auditor
object, or a built tx with its openings, must not print key material or the
blindings that open its commitments.
"""

from __future__ import annotations

import pytest

from ledger.auditor import Auditor
from ledger.build import seal_outputs
from ledger.mempool import admit_tx
from ledger.reasons import TxRejected
from ledger.wallet import OwnedOutput, Wallet, scan_block
from tests.spec.ledger_world import USD, World, committed_blocks


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def _secret_forms(secret: bytes | int) -> list[str]:
    if isinstance(secret, int):
        return [str(secret), hex(secret)[2:], secret.to_bytes(32, "little").hex()]
    return [secret.hex(), repr(secret)[2:-1][:40]]


def _assert_hidden(text: str, *secrets: bytes | int) -> None:
    for secret in secrets:
        for form in _secret_forms(secret):
            assert form not in text, f"secret {form[:12]}... in {text[:120]}"


def test_wallet_and_auditor_reprs_hide_memo_private_keys(world: World) -> None:
    wallet = Wallet(world.alice.identity, world.alice.memo_private)
    auditor = Auditor([world.auditor.memo_private])
    for obj in (wallet, auditor):
        _assert_hidden(repr(obj), world.alice.memo_private, world.auditor.memo_private)
        _assert_hidden(str(obj), world.alice.memo_private, world.auditor.memo_private)


def test_built_txs_and_owned_outputs_hide_blindings(world: World) -> None:
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(70), world.alice.plan(30)])
    blindings = [o.blinding for o in issue.openings]
    _assert_hidden(repr(issue), *blindings)
    sealed = seal_outputs([world.bob.plan(5)], USD, world.auditor.memo_public)
    _assert_hidden(repr(sealed), sealed.openings[0].blinding)
    world.commit(store, [issue])
    owned = world.owned(issue, 0)
    assert isinstance(owned, OwnedOutput)
    _assert_hidden(repr(owned), *blindings)
    wallet = Wallet(world.alice.identity, world.alice.memo_private)
    for stored in committed_blocks(store):
        result = scan_block(stored, world.chain_id, world.alice.key, world.alice.memo_private)
        _assert_hidden(repr(result), *blindings)
        wallet.scan(stored, world.chain_id)
    assert wallet.balances() == {USD: 100}
    _assert_hidden(repr(wallet), *blindings, world.alice.memo_private)


def test_rejection_messages_carry_no_blinding(world: World) -> None:
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(70)])
    world.commit(store, [issue])
    pay = world.transfer(world.alice, USD, [world.spend(issue, 0)], [world.bob.plan(70)])
    world.commit(store, [pay])
    with pytest.raises(TxRejected) as info:
        admit_tx(store, pay.encode(), world.genesis)
    _assert_hidden(str(info.value), issue.openings[0].blinding, pay.openings[0].blinding)
