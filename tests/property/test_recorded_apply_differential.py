"""Execution that reuses the mempool's recorded ``apply_tx`` results builds the very
block the rules build without them (``ledger.recorded_apply``).

Random txs (attests and registrations with clashing nonces, transfers that
double-spend, chain, or share only their asset's totals) are admitted in a
random order into a node's mempool, then a random batch of the same txs (any
order, repeats) is executed with and without ``recorded_applies``, and without
any cache: same block, same rejected requests and reasons, same writes and
receipts. Executing the mempool's own order must take every recorded result (so
the fast path is exercised, not merely allowed).
"""

from __future__ import annotations

import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.build import BuiltTx, build_attest
from ledger.execute import ExecutedBatch, execute_batch
from ledger.proof_cache import ProofCache
from ledger.recorded_apply import AppliedTx
from ledger.rules import range_statement
from ledger.state import StateReader
from ledger.stateless_cache import StatelessCache
from ledger.store import MemoryStore
from ledger.tx import decode_tx
from node.mempool import Mempool, MempoolLimits
from tests.spec.ledger_world import USD, Party, World

WORLD = World()


@functools.cache
def _pool() -> tuple[MemoryStore, tuple[bytes, ...], ProofCache]:
    """A store holding an issue to alice, and txs over it; every range proof verified once."""
    world = WORLD
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(70), world.alice.plan(30)])
    world.commit(store, [issue])
    to_bob = world.transfer(
        world.alice, USD, [world.spend(issue, 0)], [world.bob.plan(50), world.alice.plan(20)]
    )
    rival = world.transfer(
        world.alice, USD, [world.spend(issue, 0)], [world.carol.plan(60), world.alice.plan(10)]
    )
    chained = world.transfer(
        world.bob, USD, [world.spend(to_bob, 0)], [world.carol.plan(25), world.bob.plan(25)]
    )
    # Independent of the others but for the asset's totals, which every transfer
    # advances: executing in another order than admission rebases them.
    from_second = world.transfer(
        world.alice, USD, [world.spend(issue, 1)], [world.carol.plan(10), world.alice.plan(20)]
    )
    built: list[BuiltTx] = [to_bob, rival, chained, from_second]
    for bank in (world.bank_a, world.bank_b):
        for nonce in (2, 3, 4, 4):  # the bank's issue used nonce 1 (bank_a)
            digest = bytes([nonce, len(built)]) * 16
            built.append(_attest(bank, nonce, digest))
    built.append(world.register(world.bank_a, world.mallory, nonce=3))
    built.append(world.register(world.bank_b, world.mallory, nonce=5))
    payloads = tuple(b.encode() for b in built)
    cache = ProofCache()
    chain_id, max_bytes = world.chain_id, world.genesis.params.max_tx_bytes
    for payload in payloads:
        statement = range_statement(decode_tx(payload, chain_id, max_tx_bytes=max_bytes))
        if statement is not None:
            cache.verify(statement)
    return store, payloads, cache


def _attest(bank: Party, nonce: int, digest: bytes) -> BuiltTx:
    return build_attest(bank.identity, WORLD.chain_id, "doc", digest, nonce=nonce)


def execute_with(
    store: MemoryStore,
    payloads: list[bytes],
    proofs: ProofCache,
    cache: StatelessCache | None,
    *,
    recorded: bool,
) -> ExecutedBatch:
    return execute_batch(
        store,
        WORLD.genesis,
        store.height() + 1,
        payloads,
        WORLD.metadata(store),
        range_verifier=proofs.batch_verify,
        stateless_checked=None if cache is None else cache.checked,
        recorded_applies=cache.applied if cache is not None and recorded else None,
    )


def _outcome(executed: ExecutedBatch) -> tuple[object, ...]:
    result = executed.result
    return (
        executed.block.encode(),
        executed.rejected,
        tuple(result.delta.items()),
        result.receipts,
        result.block_hash,
    )


_ORIGINAL_ON = AppliedTx.on

indices = st.integers(min_value=0, max_value=13)


@settings(max_examples=60, deadline=None)
@given(
    admitted=st.lists(indices, max_size=14, unique=True),
    batch=st.lists(indices, max_size=16),
)
def test_reusing_recorded_applies_builds_the_same_block(
    admitted: list[int], batch: list[int]
) -> None:
    store, payloads, proofs = _pool()
    cache = StatelessCache()
    limits = MempoolLimits(max_txs=100, min_backlog_txs=100)
    mempool = Mempool(store, WORLD.genesis, proofs, limits, stateless_cache=cache)
    for i in admitted:
        mempool.admit(payloads[i], 0)
    requests = [payloads[i] for i in batch]
    spec = execute_with(store, requests, proofs, None, recorded=False)
    checked = execute_with(store, requests, proofs, cache, recorded=False)
    reused = execute_with(store, requests, proofs, cache, recorded=True)
    assert _outcome(reused) == _outcome(checked) == _outcome(spec)

    own_order = [r.payload for r in mempool.take_unfed(100)]
    taken = [0]

    def counting(applied: AppliedTx, view: StateReader) -> AppliedTx | None:
        current = _ORIGINAL_ON(applied, view)
        taken[0] += current is not None
        return current

    AppliedTx.on = counting  # type: ignore[method-assign]
    try:
        reused_own = execute_with(store, own_order, proofs, cache, recorded=True)
    finally:
        AppliedTx.on = _ORIGINAL_ON  # type: ignore[method-assign]
    spec_own = execute_with(store, own_order, proofs, None, recorded=False)
    assert _outcome(reused_own) == _outcome(spec_own)
    assert not reused_own.rejected
    assert taken[0] == len(own_order)
