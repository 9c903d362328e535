"""Spec tests of ``execute_batch``: a pre-state, a consensus batch, and the block plus the
rejected requests it must give; and the property that replaying the block with
``apply_block`` reaches the same state root (execution and replay agree).

Pre-state (committed, shared; cases never commit to it):
  block 1: I1 = bank A issues USD [alice 600, alice 400]
           I2 = bank B issues EUR [carol 500]
  block 2: T1 = alice spends I1[0] into [bob 100, alice 500]
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from ledger import block as block_module
from ledger import execute as execute_module
from ledger.apply import apply_block
from ledger.batch import BatchMismatchError, BlockMetadata, RejectedRequest, reassemble_batch
from ledger.block import tx_root
from ledger.build import BuiltTx, OutputPlan, build_attest, seal_outputs, sign_tx
from ledger.execute import (
    REQUEST_TAG,
    ExecutedBatch,
    commit_executed,
    execute_batch,
    request_id_of,
)
from ledger.invariants import InvariantViolation
from ledger.mempool import PendingTxs, admit_tx
from ledger.reasons import Reason, TxRejected
from ledger.rules import get_clock
from ledger.store import MemoryStore
from ledger.tx import TransferBody, output_id_of
from privacy import group
from privacy.memo import Opening
from privacy.rangeproof import RangeProofError, verify_range
from tests.spec.ledger_world import EUR, GENESIS_TIME_MS, USD, Party, World

EXECUTE_CASE_REASONS = {Reason.TOO_MANY_TXS, Reason.BLOCK_FULL}
"""Reasons only ``execute_batch`` gives a tx, asserted by the cases below."""


@dataclass
class Pre:
    world: World
    store: MemoryStore
    i1: BuiltTx
    i2: BuiltTx
    t1: BuiltTx


@pytest.fixture(scope="module")
def pre() -> Pre:
    w = World()
    store = w.new_store()
    i1 = w.issue(w.bank_a, USD, [w.alice.plan(600), w.alice.plan(400)])
    i2 = w.issue(w.bank_b, EUR, [w.carol.plan(500)])
    w.commit(store, [i1, i2])
    t1 = w.transfer(w.alice, USD, [w.spend(i1, 0)], [w.bob.plan(100), w.alice.plan(500)])
    w.commit(store, [t1])
    return Pre(w, store, i1, i2, t1)


Request = BuiltTx | bytes


def run(p: Pre, requests: list[Request], *, view: int = 0) -> ExecutedBatch:
    """Execute ``requests`` as the next batch; check the partition and the replay."""
    payloads = [r if isinstance(r, bytes) else r.encode() for r in requests]
    executed = p.world.execute(p.store, payloads, view=view)
    rejected = {r.index_in_batch: r for r in executed.rejected}
    kept = [payload for i, payload in enumerate(payloads) if i not in rejected]
    # Every request is in the block or rejected, once, in batch order.
    assert [tx.encode() for tx in executed.block.txs] == kept
    assert [r.payload for r in executed.rejected] == [payloads[i] for i in sorted(rejected)]
    block_txs = [tx.encode() for tx in executed.block.txs]
    assert reassemble_batch(block_txs, executed.rejected) == tuple(payloads)
    replayed = apply_block(p.store, executed.block, p.world.genesis)
    assert replayed.state_root == executed.result.state_root == executed.block.header.state_root
    # The block's bytes, spliced from the payloads, are the block record's encoding.
    assert executed.block_write(b"c").block_bytes == executed.block.encode()
    # What the store's undo log will take as the block's old values: the committed ones.
    for key, value in executed.prior_state.items():
        assert p.store.get_state(key) == value, key
    assert replayed.block_hash == executed.result.block_hash
    return executed


def rejections(executed: ExecutedBatch) -> list[tuple[int, Reason]]:
    return [(r.index_in_batch, r.reason) for r in executed.rejected]


def attest(p: Pre, nonce: int, label: str = "x") -> BuiltTx:
    return build_attest(p.world.bank_b.identity, p.world.chain_id, label, b"\x00" * 32, nonce=nonce)


def bad_proof_transfer(
    p: Pre, owner: Party, spent: tuple[bytes, Opening], plans: list[OutputPlan]
) -> BuiltTx:
    """A balanced transfer signed by ``owner`` whose range proof is for other commitments."""
    w = p.world
    oid, opening = spent
    sealed = seal_outputs(plans, USD, w.auditor.memo_public)
    other = seal_outputs(plans, USD, w.auditor.memo_public)
    x = (opening.blinding - sum(o.blinding for o in sealed.openings)) % group.ORDER
    body = TransferBody(owner.key, USD, (oid,), sealed.outputs, other.range_proof)
    built = sign_tx(owner.identity, body, w.chain_id, excess_blinding=x)
    return dataclasses.replace(built, openings=sealed.openings)


# --- valid cases ------------------------------------------------------------------------


def test_valid_batch_becomes_the_block_in_batch_order(pre: Pre) -> None:
    w = pre.world
    issue = w.issue(w.bank_a, USD, [w.bob.plan(5)])
    pay = w.transfer(w.alice, USD, [w.spend(pre.i1, 1)], [w.carol.plan(400)])
    executed = run(pre, [attest(pre, 200), pay, issue], view=6)
    header = executed.block.header
    assert executed.rejected == ()
    assert executed.block.txs == (attest(pre, 200).tx, pay.tx, issue.tx)
    assert header.height == pre.store.height() + 1
    assert header.prev_hash == pre.store.tip_hash()
    assert header.view == 6
    assert header.proposer == w.validators[6 % 4].key
    assert header.timestamp_ms == w.metadata(pre.store).timestamp_ms
    assert executed.metadata == BlockMetadata(header.timestamp_ms, 6)


def test_valid_null_batch_is_an_empty_block_that_advances_the_clock(pre: Pre) -> None:
    executed = run(pre, [])
    assert executed.block.txs == () and executed.rejected == ()
    assert len(executed.result.delta) == 1  # the clock record


def test_valid_spend_of_an_output_created_earlier_in_the_batch(pre: Pre) -> None:
    w = pre.world
    first = w.transfer(w.alice, USD, [w.spend(pre.i1, 1)], [w.bob.plan(400)])
    second = w.transfer(w.bob, USD, [w.spend(first, 0)], [w.carol.plan(400)])
    assert rejections(run(pre, [first, second])) == []


# --- invalid cases: the tx is rejected, the rest of the batch still executes ------------

BatchCase = Callable[[Pre], tuple[list[Request], list[tuple[int, Reason]]]]


def case_undecodable_bytes(p: Pre) -> tuple[list[Request], list[tuple[int, Reason]]]:
    return [b"\x93\x01", attest(p, 210), b"", b"\xc1"], [
        (0, Reason.MALFORMED),
        (2, Reason.MALFORMED),
        (3, Reason.MALFORMED),
    ]


def case_oversize_request(p: Pre) -> tuple[list[Request], list[tuple[int, Reason]]]:
    too_big = dataclasses.replace(
        attest(p, 211).tx, witness=b"\x00" * p.world.genesis.params.max_tx_bytes
    )
    return [too_big.encode(), attest(p, 212)], [(0, Reason.TOO_LARGE)]


def case_unknown_kind(p: Pre) -> tuple[list[Request], list[tuple[int, Reason]]]:
    unknown = dataclasses.replace(attest(p, 213).tx, kind=b"veil/tx/loan/v1")
    return [attest(p, 214), unknown.encode()], [(1, Reason.UNKNOWN_KIND)]


def case_same_tx_twice_in_the_batch(p: Pre) -> tuple[list[Request], list[tuple[int, Reason]]]:
    a = attest(p, 215)
    return [a, a], [(1, Reason.DUPLICATE_TX)]


def case_committed_tx_reissued_after_a_view_change(
    p: Pre,
) -> tuple[list[Request], list[tuple[int, Reason]]]:
    return [p.t1, attest(p, 216), p.i2], [(0, Reason.DUPLICATE_TX), (2, Reason.DUPLICATE_TX)]


def case_same_id_with_another_signature(p: Pre) -> tuple[list[Request], list[tuple[int, Reason]]]:
    # The signature is outside the tx id: a copy with a forged one is the same request id.
    a = attest(p, 217)
    forged = dataclasses.replace(a.tx, signature=b"\x01" * 64)
    return [forged.encode(), a], [(0, Reason.BAD_SIGNATURE)]


def case_second_spend_of_an_input(p: Pre) -> tuple[list[Request], list[tuple[int, Reason]]]:
    w = p.world
    a = w.transfer(w.alice, USD, [w.spend(p.i1, 1)], [w.bob.plan(400)])
    b = w.transfer(w.alice, USD, [w.spend(p.i1, 1)], [w.carol.plan(400)])
    return [a, b], [(1, Reason.DOUBLE_SPEND)]


def case_tx_that_became_invalid(p: Pre) -> tuple[list[Request], list[tuple[int, Reason]]]:
    # Valid when admitted; an earlier block spent its input since.
    w = p.world
    stale = w.transfer(w.alice, USD, [w.spend(p.i1, 0)], [w.carol.plan(600)])
    return [stale, attest(p, 218)], [(0, Reason.DOUBLE_SPEND)]


def case_bad_signature(p: Pre) -> tuple[list[Request], list[tuple[int, Reason]]]:
    w = p.world
    honest = attest(p, 219)
    forged = w.mallory.identity.sign(honest.tx.kind, w.chain_id, honest.tx.body)
    bad = dataclasses.replace(honest.tx, signature=forged)
    return [attest(p, 220), bad.encode()], [(1, Reason.BAD_SIGNATURE)]


def case_reused_nonce_in_the_batch(p: Pre) -> tuple[list[Request], list[tuple[int, Reason]]]:
    return [attest(p, 221, "a"), attest(p, 221, "b")], [(1, Reason.REPLAYED)]


def case_bad_range_proof_among_good_ones(p: Pre) -> tuple[list[Request], list[tuple[int, Reason]]]:
    w = p.world
    good = w.transfer(w.bob, USD, [w.spend(p.t1, 0)], [w.carol.plan(100)])
    bad = bad_proof_transfer(p, w.alice, w.spend(p.i1, 1), [w.bob.plan(400)])
    other = w.issue(w.bank_a, USD, [w.bob.plan(7)])
    return [good, bad, other], [(1, Reason.BAD_RANGE_PROOF)]


def case_bad_proof_its_dependant_and_a_rival(
    p: Pre,
) -> tuple[list[Request], list[tuple[int, Reason]]]:
    # Leaving out the bad-proof tx makes its dependant UNKNOWN_INPUT and its rival valid.
    w = p.world
    bad = bad_proof_transfer(p, w.alice, w.spend(p.i1, 1), [w.bob.plan(400)])
    dependant = w.transfer(
        w.bob, USD, [(output_id_of(bad.tx_id, 0), bad.openings[0])], [w.carol.plan(400)]
    )
    rival = w.transfer(w.alice, USD, [w.spend(p.i1, 1)], [w.carol.plan(400)])
    return [bad, dependant, rival], [(0, Reason.BAD_RANGE_PROOF), (1, Reason.UNKNOWN_INPUT)]


def case_dependant_with_a_bad_proof_too(
    p: Pre,
) -> tuple[list[Request], list[tuple[int, Reason]]]:
    # Both proofs fail in the first pass; the dependant's reason is still the first
    # check it fails once its parent is out: UNKNOWN_INPUT, not BAD_RANGE_PROOF.
    w = p.world
    bad = bad_proof_transfer(p, w.alice, w.spend(p.i1, 1), [w.bob.plan(400)])
    dependant = bad_proof_transfer(
        p, w.bob, (output_id_of(bad.tx_id, 0), bad.openings[0]), [w.bob.plan(400)]
    )
    return [bad, dependant], [(0, Reason.BAD_RANGE_PROOF), (1, Reason.UNKNOWN_INPUT)]


def case_more_txs_than_a_block_holds(p: Pre) -> tuple[list[Request], list[tuple[int, Reason]]]:
    limit = p.world.genesis.params.max_block_txs
    batch: list[Request] = [attest(p, 300 + i) for i in range(limit + 2)]
    return batch, [(limit, Reason.TOO_MANY_TXS), (limit + 1, Reason.TOO_MANY_TXS)]


BATCH_CASES: list[BatchCase] = [
    case_undecodable_bytes,
    case_oversize_request,
    case_unknown_kind,
    case_same_tx_twice_in_the_batch,
    case_committed_tx_reissued_after_a_view_change,
    case_same_id_with_another_signature,
    case_second_spend_of_an_input,
    case_tx_that_became_invalid,
    case_bad_signature,
    case_reused_nonce_in_the_batch,
    case_bad_range_proof_among_good_ones,
    case_bad_proof_its_dependant_and_a_rival,
    case_dependant_with_a_bad_proof_too,
    case_more_txs_than_a_block_holds,
]


@pytest.mark.parametrize("make", BATCH_CASES, ids=[c.__name__[5:] for c in BATCH_CASES])
def test_invalid_requests_are_rejected_and_the_rest_executes(pre: Pre, make: BatchCase) -> None:
    requests, expected = make(pre)
    executed = run(pre, requests)
    assert rejections(executed) == expected
    assert {reason for _, reason in expected} <= set(Reason)


def test_block_full_rejects_the_valid_txs_that_do_not_fit(
    pre: Pre, monkeypatch: pytest.MonkeyPatch
) -> None:
    txs = [attest(pre, 400 + i) for i in range(4)]
    limit = block_module.BLOCK_OVERHEAD_BYTES + 2 * len(txs[0].encode())
    monkeypatch.setattr(block_module, "MAX_BLOCK_BYTES", limit)
    monkeypatch.setattr(execute_module, "MAX_BLOCK_BYTES", limit)
    executed = run(pre, list(txs))
    assert rejections(executed) == [(2, Reason.BLOCK_FULL), (3, Reason.BLOCK_FULL)]
    assert Reason.BLOCK_FULL in EXECUTE_CASE_REASONS


def test_a_timestamp_before_the_parent_is_raised_to_the_parent(pre: Pre) -> None:
    clock = get_clock(pre.store)
    assert clock is not None
    metadata = BlockMetadata(GENESIS_TIME_MS - 5, 1)
    executed = execute_batch(pre.store, pre.world.genesis, pre.store.height() + 1, [], metadata)
    assert executed.block.header.timestamp_ms == clock.timestamp_ms
    apply_block(pre.store, executed.block, pre.world.genesis)


@pytest.mark.parametrize("offset", [0, 2, -5])
def test_a_height_that_does_not_follow_the_tip_is_a_caller_bug(pre: Pre, offset: int) -> None:
    with pytest.raises(InvariantViolation, match="executing height"):
        execute_batch(
            pre.store, pre.world.genesis, pre.store.height() + offset, [], BlockMetadata(0, 0)
        )


def test_each_proof_is_verified_once_even_across_passes(pre: Pre) -> None:
    w = pre.world
    calls: list[int] = []

    def counting(statements: list[object]) -> list[int]:
        calls.append(len(statements))
        bad = []
        for i, statement in enumerate(statements):
            try:
                verify_range(statement)  # type: ignore[arg-type]
            except RangeProofError:
                bad.append(i)
        return bad

    bad = bad_proof_transfer(pre, w.alice, w.spend(pre.i1, 1), [w.bob.plan(400)])
    rival = w.transfer(w.alice, USD, [w.spend(pre.i1, 1)], [w.carol.plan(400)])
    good = w.transfer(w.bob, USD, [w.spend(pre.t1, 0)], [w.carol.plan(100)])
    execute_batch(
        pre.store,
        w.genesis,
        pre.store.height() + 1,
        [bad.encode(), rival.encode(), good.encode()],
        w.metadata(pre.store),
        range_verifier=counting,  # type: ignore[arg-type]
    )
    # Pass 1 verifies bad and good; pass 2 only the rival, which became valid.
    assert calls == [2, 1]


# --- request ids ------------------------------------------------------------------------


def test_request_id_covers_the_whole_payload(pre: Pre) -> None:
    a = attest(pre, 500)
    chain = pre.world.chain_id
    assert (
        request_id_of(a.encode(), chain)
        == hashlib.sha256(REQUEST_TAG + chain + a.encode()).digest()
    )
    # A copy with a forged signature or witness has the same tx id but is another
    # request, so ordering it cannot make consensus drop the honest one.
    forged = dataclasses.replace(a.tx, signature=b"\x02" * 64, witness=b"w").encode()
    assert request_id_of(forged, chain) != request_id_of(a.encode(), chain)
    assert request_id_of(a.encode(), bytes(32)) != request_id_of(a.encode(), chain)


def test_request_id_of_any_bytes_never_raises(pre: Pre) -> None:
    chain = pre.world.chain_id
    rng = random.Random(8)
    valid = attest(pre, 501).encode()
    samples = [b"", b"\x00", b"\xc1", b"\x94" + b"\xc4\x00" * 4, b"\xff" * 70_000]
    samples += [rng.randbytes(rng.randrange(0, 300)) for _ in range(300)]
    for _ in range(300):
        mutated = bytearray(valid)
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        samples.append(bytes(mutated))
    ids = {request_id_of(payload, chain) for payload in samples}
    assert all(len(i) == 32 for i in ids)
    assert len(ids) == len(set(samples))


# --- the property: sequential reference, and replay agrees --------------------------------


def reference(p: Pre, payloads: list[bytes]) -> list[tuple[int, Reason]]:
    """The module docstring's rule, one tx at a time with the proof verified alone."""
    g = p.world.genesis
    pending = PendingTxs(p.store, g)
    rejected: list[tuple[int, Reason]] = []
    for index, payload in enumerate(payloads):
        try:
            admit_tx(p.store, payload, g, pending=pending)
        except TxRejected as exc:
            rejected.append((index, exc.reason))
    return rejected


def test_random_batches_match_the_sequential_rule_and_replay(pre: Pre) -> None:
    w = pre.world
    pool: list[bytes] = []
    first = w.transfer(w.alice, USD, [w.spend(pre.i1, 1)], [w.bob.plan(400)])
    bad = bad_proof_transfer(pre, w.alice, w.spend(pre.i1, 1), [w.bob.plan(400)])
    pool += [
        first.encode(),
        w.transfer(w.bob, USD, [w.spend(first, 0)], [w.carol.plan(400)]).encode(),
        w.transfer(w.alice, USD, [w.spend(pre.i1, 1)], [w.carol.plan(400)]).encode(),
        bad.encode(),
        w.transfer(
            w.bob, USD, [(output_id_of(bad.tx_id, 0), bad.openings[0])], [w.carol.plan(400)]
        ).encode(),
        w.transfer(w.bob, USD, [w.spend(pre.t1, 0)], [w.carol.plan(100)]).encode(),
        pre.t1.encode(),
        attest(pre, 600).encode(),
        attest(pre, 600, "same nonce").encode(),
        b"\x93\x01",
    ]
    rng = random.Random(20261130)
    for _ in range(12):
        payloads = [rng.choice(pool) for _ in range(rng.randint(0, 6))]
        executed = run(pre, list(payloads))
        assert rejections(executed) == reference(pre, payloads), payloads
        # The root is taken over the included requests' bytes: the same as over the txs.
        assert executed.block.header.tx_root == tx_root(executed.block.txs), payloads


def test_there_are_more_invalid_batch_cases_than_valid_ones() -> None:
    valid = [n for n in globals() if n.startswith("test_valid_")]
    assert len(BATCH_CASES) >= 2 * len(valid)


def test_reassembling_a_batch_refuses_what_no_batch_gives() -> None:
    junk = RejectedRequest(1, "MALFORMED", b"junk")
    assert reassemble_batch([b"a", b"b"], [junk]) == (b"a", b"junk", b"b")
    assert reassemble_batch([], []) == ()
    with pytest.raises(BatchMismatchError):
        reassemble_batch([b"a"], [dataclasses.replace(junk, index_in_batch=2)])
    with pytest.raises(BatchMismatchError):
        reassemble_batch([b"a", b"b"], [junk, junk])


def test_a_rejected_forged_copy_does_not_block_the_honest_tx_in_the_ledger() -> None:
    # Same tx id (the signature is outside it) but another request id: the forged
    # copy is rejected and the honest one, a request of its own, commits later.
    w = World()
    store = w.new_store()
    honest = build_attest(w.bank_b.identity, w.chain_id, "h", b"\x05" * 32, nonce=1)
    forged = dataclasses.replace(honest.tx, signature=b"\x07" * 64).encode()
    assert request_id_of(forged, w.chain_id) != request_id_of(honest.encode(), w.chain_id)
    first = w.execute(store, [forged])
    assert rejections(first) == [(0, Reason.BAD_SIGNATURE)]
    commit_executed(store, first, b"cert")
    second = w.execute(store, [honest])
    assert second.rejected == () and second.block.txs == (honest.tx,)
