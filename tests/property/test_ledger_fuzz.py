"""Fuzz the ledger's decode and validation paths with mutated valid txs and blocks.

Seeded (``random.Random``), so a failure replays exactly. Three mutators:

* bytes: flip, overwrite, insert, delete, truncate, splice bytes of a valid
  encoded tx or block (exercises the strict decoder);
* structure: decode a valid tx body to plain values, change one leaf or one
  array length, re-encode canonically and *re-sign with the real signer* (and,
  for a registration whose PoP the mutation left alone, make the account's
  proof of possession again), so the mutation gets past decoding and the
  signatures into the stateless and stateful rules;
* envelope: change the witness or kind of a valid tx.

Whatever comes out, ``admit_tx`` may only raise ``TxRejected`` and
``decode_block``/``apply_block`` only ``BlockRejected``, and the store (height,
tip, root, every state pair) must be exactly as before.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from ledger.apply import apply_block
from ledger.auditor import Auditor
from ledger.batch import BlockMetadata
from ledger.block import Block, decode_block
from ledger.build import (
    BuiltTx,
    approve,
    build_attest,
    build_register_member,
    build_set_auditor_key,
    prove_member_possession,
)
from ledger.codec import EncodeError, Value, decode_value, encode_value
from ledger.execute import execute_batch, request_id_of
from ledger.identity import SigningIdentity
from ledger.mempool import PendingTxs, admit_tx
from ledger.reasons import BlockRejected, Reason, TxRejected
from ledger.store import MemoryStore
from ledger.tx import (
    BODY_TYPES,
    GOVERNANCE_TAGS,
    TAG_REGISTER_ACCOUNT,
    TAG_REGISTER_ACCOUNT_POP,
    Approvals,
    RegisterAccountBody,
    Tx,
    pop_payload,
    tx_id_of,
)
from privacy import group
from privacy.sigma import prove_excess
from tests.spec.ledger_world import GENESIS_TIME_MS, USD, World, raw_block


@dataclass
class Fuzz:
    world: World
    store: MemoryStore
    valid: list[BuiltTx]
    signers: dict[bytes, SigningIdentity]
    excess_keys: dict[bytes, int]
    """tx id of a valid issue/transfer -> its excess key x (re-proven after a mutation)."""
    approvers: dict[bytes, list[SigningIdentity]]
    """tx id of a valid governance tx -> its approvers (re-approve after a mutation)."""


@pytest.fixture(scope="module")
def fuzz() -> Fuzz:
    w = World()
    store = w.new_store()
    issue = w.issue(w.bank_a, USD, [w.alice.plan(600), w.alice.plan(400)])
    w.commit(store, [issue])
    transfer = w.transfer(w.alice, USD, [w.spend(issue, 0)], [w.bob.plan(100), w.alice.plan(500)])
    minted = w.issue(w.bank_a, USD, [w.bob.plan(5)])
    bank_c = SigningIdentity.from_seed(b"\x44" * 32)
    new_member = build_register_member(
        w.bank_a.identity,
        [w.bank_b.identity],
        w.chain_id,
        member_key=bank_c.public_key,
        memo_public_key=w.carol.memo_public,
        name="Bank C",
        assets=[(b"\x33" * 32, "CHF.C")],
        proof_of_possession=prove_member_possession(
            bank_c, w.chain_id, memo_public_key=w.carol.memo_public, name="Bank C"
        ),
        nonce=11,
    )
    valid = [
        transfer,
        minted,
        new_member,
        w.register(w.bank_a, w.mallory, nonce=7),
        build_attest(w.bank_b.identity, w.chain_id, "report", b"\x01" * 32, nonce=3),
        build_set_auditor_key(
            w.bank_b.identity, [w.bank_a.identity], w.chain_id, w.bob.memo_public, nonce=9
        ),
    ]
    for built in valid:
        admit_tx(store, built.encode(), w.genesis)  # the seeds themselves are valid
    parties = [w.bank_a, w.bank_b, w.alice, w.bob, w.carol, w.mallory]
    x_transfer = issue.openings[0].blinding - sum(o.blinding for o in transfer.openings)
    x_issue = -sum(o.blinding for o in minted.openings)
    return Fuzz(
        w,
        store,
        valid,
        {p.key: p.identity for p in parties},
        {transfer.tx_id: x_transfer % group.ORDER, minted.tx_id: x_issue % group.ORDER},
        {tx.tx_id: [w.bank_a.identity] for tx in valid if tx.tx.kind in GOVERNANCE_TAGS},
    )


def snapshot(store: MemoryStore) -> tuple[object, ...]:
    return (store.height(), store.tip_hash(), store.state_root(), tuple(store.iter_state()))


# --- mutators ----------------------------------------------------------------------


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        i = rng.randrange(len(out) + 1)
        if op == 0 and i < len(out):
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and i < len(out):
            out[i] = rng.randrange(256)
        elif op == 2:
            out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3:
            del out[i : i + rng.randint(1, 8)]
        elif op == 4:
            del out[i:]
        else:
            j = rng.randrange(len(out) + 1)
            out[i:i] = out[j : j + rng.randint(1, 40)]
    return bytes(out)


INTERESTING_INTS = [0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 64, 255, 256, 2**32 - 1, 2**63, 2**64 - 1]


def _mutate_leaf(value: Value, rng: random.Random, pool: list[Value]) -> Value:
    choice = rng.randrange(5)
    if choice == 0 and pool:
        return rng.choice(pool)  # a value from elsewhere in a valid tx
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice([*INTERESTING_INTS, value + 1, max(value - 1, 0), -1])
    if isinstance(value, bytes):
        if choice == 1:
            return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 31, 32, 33, 64])))
        if choice == 2 and value:
            flipped = bytearray(value)
            flipped[rng.randrange(len(value))] ^= 1 << rng.randrange(8)
            return bytes(flipped)
        if choice == 3:
            return bytes(32) if len(value) == 32 else value[: rng.randrange(len(value) + 1)]
        return value + value[:1]
    if isinstance(value, str):
        return rng.choice(["", "x" * 65, value + "\u00e9", "\u0000"])
    return value


def _leaves(value: Value, out: list[Value]) -> None:
    if isinstance(value, (tuple, list)):
        for item in value:
            _leaves(item, out)
    else:
        out.append(value)


def mutate_structure(value: Value, rng: random.Random, pool: list[Value]) -> Value:
    """Change one leaf, or the length of one array, somewhere in ``value``."""
    if isinstance(value, (tuple, list)):
        items = list(value)
        roll = rng.random()
        if roll < 0.15 or not items:
            # Change this array's length: drop, duplicate or empty it.
            kind = rng.randrange(3)
            if kind == 0 and items:
                del items[rng.randrange(len(items))]
            elif kind == 1 and items:
                items.append(items[rng.randrange(len(items))])
            else:
                items = []
            return tuple(items)
        i = rng.randrange(len(items))
        items[i] = mutate_structure(items[i], rng, pool)
        return tuple(items)
    return _mutate_leaf(value, rng, pool)


def resigned(f: Fuzz, tx: Tx, body: bytes) -> Tx:
    """``tx`` with a new body, signed by the key the new body names (if we hold it), and
    its witness made again for the new tx id: the same excess key, the same approvers."""
    chain_id = f.world.chain_id
    signer = f.signers.get(_signer_field(body)) or f.signers[f.world.bank_a.key]
    if tx.kind == TAG_REGISTER_ACCOUNT:
        body = _re_proven_possession(f, tx.body, body)
    signature = signer.sign(tx.kind, chain_id, body)
    old_id = tx_id_of(tx.kind, tx.body, chain_id)
    new_id = tx_id_of(tx.kind, body, chain_id)
    witness = tx.witness
    if old_id in f.excess_keys:
        witness = prove_excess(f.excess_keys[old_id], new_id)
    elif old_id in f.approvers:
        approvals = tuple(approve(m, chain_id, new_id) for m in f.approvers[old_id])
        witness = Approvals(approvals).encode()
    return Tx(tx.kind, body, signature, witness)


def _re_proven_possession(f: Fuzz, old_body: bytes, body: bytes) -> bytes:
    """``body`` with the account's PoP made again over its mutated fields, when the
    mutation left the PoP itself alone and we hold the account key."""
    try:
        old = RegisterAccountBody.decode(old_body)
        new = RegisterAccountBody.decode(body)
    except ValueError:
        return body
    account = f.signers.get(new.account_key)
    if new.proof_of_possession != old.proof_of_possession or account is None:
        return body
    payload = pop_payload(new.registrar, new.account_key, new.memo_public_key)
    pop = account.sign(TAG_REGISTER_ACCOUNT_POP, f.world.chain_id, payload)
    return dataclasses.replace(new, proof_of_possession=pop).encode()


def _signer_field(body: bytes) -> bytes:
    try:
        value = decode_value(body)
    except ValueError:
        return b""
    if isinstance(value, tuple) and value and isinstance(value[0], bytes):
        return value[0]  # every body's first field is its signer
    return b""


def mutated_tx(f: Fuzz, rng: random.Random, pool: list[Value]) -> bytes:
    seed = rng.choice(f.valid).tx
    mode = rng.randrange(4)
    if mode == 0:
        return mutate_bytes(seed.encode(), rng)
    if mode == 3:
        witness = rng.choice([b"", mutate_bytes(seed.witness, rng), rng.choice(f.valid).tx.witness])
        kind = rng.choice([seed.kind, *BODY_TYPES]) if rng.random() < 0.3 else seed.kind
        return Tx(kind, seed.body, seed.signature, witness).encode()
    value = decode_value(seed.body)
    for _ in range(rng.randint(1, 2)):
        value = mutate_structure(value, rng, pool)
    try:
        body = encode_value(value)
    except EncodeError:
        body = seed.body
    return resigned(f, seed, body).encode()


def value_pool(f: Fuzz) -> list[Value]:
    pool: list[Value] = []
    for built in f.valid:
        _leaves(decode_value(built.tx.body), pool)
    return pool


# --- properties --------------------------------------------------------------------


def _check_tx(f: Fuzz, data: bytes) -> str:
    """Admit ``data``; if it is accepted, no asset's supply may have changed by it."""
    pending = PendingTxs(f.store, f.world.genesis)
    try:
        admit_tx(f.store, data, f.world.genesis, pending=pending)
    except TxRejected as exc:
        assert isinstance(exc.reason, Reason)
        assert not pending.view.delta(), "a rejected tx wrote into the pending view"
        assert len(pending) == 0
        return exc.reason.value
    report = Auditor([]).report(pending.view)
    assert all(a.commitments_balance for a in report.assets.values()), report.assets
    return "ACCEPTED"


def _check_block(f: Fuzz, data: bytes) -> str:
    try:
        block = decode_block(data)
        apply_block(f.store, block, f.world.genesis)
    except BlockRejected as exc:
        assert isinstance(exc.reason, Reason)
        return exc.reason.value
    return "ACCEPTED"


def _run(f: Fuzz, seed: int, rounds: int, step: Callable[[random.Random], str]) -> Counter[str]:
    """Run ``step`` ``rounds`` times; any exception but a rejection fails with the seed."""
    before = snapshot(f.store)
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    for round_index in range(rounds):
        try:
            outcomes[step(rng)] += 1
        except Exception as exc:  # pragma: no cover - the failure report
            raise AssertionError(f"seed {seed} round {round_index}: {exc!r}") from exc
    assert snapshot(f.store) == before
    return outcomes


@pytest.mark.parametrize("seed", [1, 2])
def test_mutated_txs_are_only_ever_rejected(fuzz: Fuzz, seed: int) -> None:
    pool = value_pool(fuzz)
    outcomes = _run(fuzz, seed, 400, lambda rng: _check_tx(fuzz, mutated_tx(fuzz, rng, pool)))
    # Not vacuous: mutations reach the signature, the stateless and the stateful rules.
    expected = {"MALFORMED", "BAD_SIGNATURE", "UNBALANCED", "BAD_RANGE_PROOF", "ACCEPTED"}
    assert expected <= set(outcomes), outcomes


def test_mutated_txs_inside_blocks_are_only_ever_rejected(fuzz: Fuzz) -> None:
    pool = value_pool(fuzz)

    def step(rng: random.Random) -> str:
        try:
            tx = Tx.decode(mutated_tx(fuzz, rng, pool))
        except ValueError:
            return "NOT_AN_ENVELOPE"  # covered by the byte-level block test
        others = [v.tx for v in rng.sample(fuzz.valid, rng.randint(0, 2))]
        txs = [*others, tx]
        rng.shuffle(txs)
        block = raw_block(fuzz.world, fuzz.store, txs)
        return _check_block(fuzz, block.encode())

    outcomes = _run(fuzz, 3, 150, step)
    assert {"MALFORMED", "BAD_SIGNATURE", "BAD_STATE_ROOT"} <= set(outcomes), outcomes


def test_mutated_txs_in_batches_execute_and_replay_to_the_same_root(fuzz: Fuzz) -> None:
    """``execute_batch`` never raises on request bytes, accounts for every request, and
    ``apply_block`` on its block reaches its state root."""
    pool = value_pool(fuzz)
    w = fuzz.world

    def step(rng: random.Random) -> str:
        payloads = [mutated_tx(fuzz, rng, pool) for _ in range(rng.randint(1, 3))]
        payloads += [v.encode() for v in rng.sample(fuzz.valid, rng.randint(0, 2))]
        rng.shuffle(payloads)
        height = fuzz.store.height() + 1
        metadata = BlockMetadata(GENESIS_TIME_MS + height, rng.randrange(8))
        executed = execute_batch(fuzz.store, w.genesis, height, payloads, metadata)
        rejected = {r.index_in_batch for r in executed.rejected}
        kept = [p for i, p in enumerate(payloads) if i not in rejected]
        assert [tx.encode() for tx in executed.block.txs] == kept
        replayed = apply_block(fuzz.store, executed.block, w.genesis)
        assert replayed.state_root == executed.block.header.state_root
        for payload in payloads:
            assert len(request_id_of(payload, w.chain_id)) == 32
        kept_some = "KEPT" if executed.block.txs else "KEPT_NONE"
        return f"{kept_some}/{'REJECTED' if rejected else 'REJECTED_NONE'}"

    outcomes = _run(fuzz, 6, 60, step)
    # Not vacuous: batches keep valid txs beside rejected ones.
    assert "KEPT/REJECTED" in outcomes, outcomes


def test_mutated_block_bytes_are_only_ever_rejected(fuzz: Fuzz) -> None:
    w = fuzz.world
    transfer, minted, _, register, attest, _ = fuzz.valid
    proposed = w.propose(fuzz.store, [transfer, minted, register, attest])
    encoded = proposed.encode()
    apply_block(fuzz.store, decode_block(encoded), w.genesis)  # the seed block is valid

    outcomes = _run(fuzz, 4, 300, lambda rng: _check_block(fuzz, mutate_bytes(encoded, rng)))
    assert "MALFORMED" in outcomes, outcomes


def test_mutated_block_structure_is_only_ever_rejected(fuzz: Fuzz) -> None:
    w = fuzz.world
    proposed: Block = w.propose(fuzz.store, fuzz.valid[3:])
    value = decode_value(proposed.encode())

    def step(rng: random.Random) -> str:
        mutated = mutate_structure(value, rng, [])
        try:
            data = encode_value(mutated)
        except EncodeError:
            return "UNENCODABLE"
        return _check_block(fuzz, data)

    outcomes = _run(fuzz, 5, 300, step)
    assert {"MALFORMED", "BAD_TX_ROOT", "BAD_HEIGHT"} <= set(outcomes), outcomes
