"""Account registration: the account key's proof of possession (a
member cannot register someone else's key with a memo key it controls) and memo key
validation (no small-order X25519 key enters the state)."""

from __future__ import annotations

import dataclasses
import random

import pytest
from nacl.bindings import crypto_scalarmult
from nacl.exceptions import RuntimeError as NaclRuntimeError
from nacl.public import PrivateKey

from ledger.apply import apply_block
from ledger.block import decode_block
from ledger.build import (
    BuiltTx,
    build_register_account,
    build_register_member,
    build_set_auditor_key,
    prove_account_possession,
    sign_tx,
)
from ledger.genesis import AccountInfo, GenesisError, MemberInfo, genesis_from_json, genesis_to_json
from ledger.memo_key import FIELD_PRIME, SMALL_ORDER_U, is_valid_memo_key, memo_key_problem
from ledger.mempool import admit_tx
from ledger.reasons import BlockRejected, Reason, TxRejected
from ledger.rules import get_account
from ledger.state import StateView
from ledger.store import MemoryStore
from ledger.tx import RegisterAccountBody, Tx
from ledger.wallet import Wallet
from tests.spec.ledger_world import USD, World, raw_block

TOP_BIT = 1 << 255


def encodings_of_small_order_points() -> list[bytes]:
    """Every 32-byte encoding of a small-order u: canonical, u + p where it fits, top bit set."""
    values = set(SMALL_ORDER_U) | {
        u + FIELD_PRIME for u in SMALL_ORDER_U if u + FIELD_PRIME < TOP_BIT
    }
    return sorted(v.to_bytes(32, "little") for u in values for v in (u, u | TOP_BIT))


def libsodium_accepts(key: bytes) -> bool:
    """libsodium refuses an X25519 shared secret that is all zero (a small-order point)."""
    try:
        crypto_scalarmult(PrivateKey.generate().encode(), key)
    except NaclRuntimeError:
        return False
    return True


@pytest.mark.parametrize("key", encodings_of_small_order_points(), ids=lambda k: k.hex()[:8])
def test_every_encoding_of_a_small_order_point_is_refused(key: bytes) -> None:
    assert memo_key_problem(key) is not None
    assert not libsodium_accepts(key)  # the list is a fact about libsodium, not a guess


def test_the_small_order_list_has_the_five_points_and_fourteen_encodings() -> None:
    assert len(SMALL_ORDER_U) == 5
    assert len(encodings_of_small_order_points()) == 14  # 5 + p, p + 1, all twice


def test_memo_key_check_agrees_with_libsodium_on_other_keys() -> None:
    rng = random.Random(20261129)
    edge = [*range(64), *range(FIELD_PRIME - 32, TOP_BIT)]
    samples = [u.to_bytes(32, "little") for u in edge]
    samples += [rng.randbytes(32) for _ in range(200)]
    samples += [bytes(PrivateKey.generate().public_key) for _ in range(20)]
    for key in samples:
        assert is_valid_memo_key(key) == libsodium_accepts(key), key.hex()


@pytest.mark.parametrize("length", [0, 31, 33])
def test_a_memo_key_is_32_bytes(length: int) -> None:
    assert memo_key_problem(b"\x05" * 32) is None  # control: only the length is wrong below
    problem = memo_key_problem(b"\x05" * length)
    assert problem is not None and "32 bytes" in problem, problem


# --- genesis -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def test_genesis_refuses_small_order_memo_keys(world: World) -> None:
    g = world.genesis
    zero = bytes(32)
    one_top = (1 | TOP_BIT).to_bytes(32, "little")
    with pytest.raises(GenesisError, match="member"):
        dataclasses.replace(
            g, members=(MemberInfo("Bank A", world.bank_a.key, zero), *g.members[1:])
        )
    bad_account = AccountInfo(world.mallory.key, one_top, world.bank_a.key)
    with pytest.raises(GenesisError, match="account"):
        dataclasses.replace(g, accounts=(*g.accounts, bad_account))
    with pytest.raises(GenesisError, match="auditor"):
        dataclasses.replace(g, auditor_memo_public_key=zero)


def test_genesis_file_with_an_all_zero_auditor_key_is_refused(world: World) -> None:
    text = genesis_to_json(world.genesis).replace(world.auditor.memo_public.hex(), "00" * 32)
    with pytest.raises(GenesisError, match="auditor"):
        genesis_from_json(text)


# --- builders -------------------------------------------------------------------------


def test_builders_refuse_what_the_chain_would_refuse(world: World) -> None:
    w = world
    zero = bytes(32)
    with pytest.raises(ValueError, match="memo key"):
        prove_account_possession(
            w.mallory.identity, w.chain_id, registrar=w.bank_a.key, memo_public_key=zero
        )
    pop_for_a = w.pop(w.mallory, w.bank_a)
    with pytest.raises(ValueError, match="proof of possession"):
        # bank B cannot use the PoP mallory gave bank A, nor change the memo key
        build_register_account(
            w.bank_b.identity,
            w.chain_id,
            w.mallory.key,
            w.mallory.memo_public,
            proof_of_possession=pop_for_a,
            nonce=5,
        )
    with pytest.raises(ValueError, match="proof of possession"):
        build_register_account(
            w.bank_a.identity,
            w.chain_id,
            w.mallory.key,
            w.bank_a.memo_public,
            proof_of_possession=pop_for_a,
            nonce=5,
        )
    with pytest.raises(ValueError, match="memo key"):
        build_register_member(
            w.bank_a.identity,
            [w.bank_b.identity],
            w.chain_id,
            member_key=w.mallory.key,
            memo_public_key=zero,
            name="M",
            proof_of_possession=bytes(64),  # the memo key is refused before the PoP is read
            nonce=5,
        )
    with pytest.raises(ValueError, match="memo key"):
        build_set_auditor_key(w.bank_a.identity, [w.bank_b.identity], w.chain_id, zero, nonce=5)


# --- on chain ---------------------------------------------------------------------------


def expect(w: World, store: MemoryStore, tx: BuiltTx | Tx, reason: Reason) -> None:
    envelope = tx.tx if isinstance(tx, BuiltTx) else tx
    with pytest.raises(TxRejected) as mempool:
        admit_tx(store, envelope.encode(), w.genesis)
    assert mempool.value.reason is reason, mempool.value
    with pytest.raises(BlockRejected) as block:
        apply_block(store, raw_block(w, store, [envelope]), w.genesis)
    assert block.value.reason is reason, block.value


def test_a_member_cannot_register_someone_else_with_its_own_memo_key() -> None:
    """The review's attack: bank B registers mallory's key first, with bank B's memo key,
    to read her amounts (and leave her unable to open, so spend, her outputs)."""
    w = World()
    store = w.new_store()
    mallory = Wallet(w.mallory.identity, w.mallory.memo_private)
    pop = mallory.proof_of_possession(w.chain_id, w.bank_a.key)  # mallory banks with A
    hijack = RegisterAccountBody(w.bank_b.key, w.mallory.key, w.bank_b.memo_public, 9, pop)
    expect(w, store, sign_tx(w.bank_b.identity, hijack, w.chain_id), Reason.BAD_PROOF_OF_POSSESSION)
    same_key = RegisterAccountBody(w.bank_b.key, w.mallory.key, w.mallory.memo_public, 9, pop)
    expect(
        w, store, sign_tx(w.bank_b.identity, same_key, w.chain_id), Reason.BAD_PROOF_OF_POSSESSION
    )

    honest = build_register_account(
        w.bank_a.identity,
        w.chain_id,
        mallory.public_key,
        mallory.memo_public_key,
        proof_of_possession=pop,
        nonce=w.next_nonce(w.bank_a),
    )
    w.commit(store, [honest])
    account = get_account(StateView(store), w.mallory.key)
    assert account is not None and account.memo_public_key == mallory.memo_public_key
    issue = w.issue(w.bank_a, USD, [w.mallory.plan(70)])
    w.commit(store, [issue])
    mallory.scan(decode_block(store.block_at(store.height()) or b""), w.chain_id)
    assert mallory.balances() == {USD: 70}


def test_the_proof_of_possession_cannot_be_swapped_without_the_registrar(world: World) -> None:
    w = world
    store = w.new_store()
    honest = w.register(w.bank_a, w.mallory, nonce=9)
    body = RegisterAccountBody.decode(honest.tx.body)
    other_pop = w.pop(w.mallory, w.bank_a)  # ed25519 in PyNaCl is deterministic: same bytes
    assert other_pop == body.proof_of_possession
    flipped = bytes([body.proof_of_possession[0] ^ 1]) + body.proof_of_possession[1:]
    changed = dataclasses.replace(body, proof_of_possession=flipped).encode()
    # the registrar's signature covers the body, PoP included: a relayer changing it breaks it
    expect(w, store, dataclasses.replace(honest.tx, body=changed), Reason.BAD_SIGNATURE)
    # and the witness stays empty: the PoP cannot ride outside the tx id either
    expect(w, store, dataclasses.replace(honest.tx, witness=other_pop), Reason.MALFORMED)
    admit_tx(store, honest.encode(), w.genesis)
