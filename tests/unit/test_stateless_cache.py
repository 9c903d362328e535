"""``StatelessCache``: execution skips the stateless checks the mempool ran on the same bytes,
and only on the same bytes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from consensus.actions import Execute
from consensus.certificate import CommitCertificate
from consensus.messages import ProposalMetadata
from ledger import execute as ledger_execute
from ledger import rules
from ledger.apply import decode_block_tx
from ledger.build import BuiltTx, build_attest
from ledger.execute import ExecutedBatch, execute_batch
from ledger.proof_cache import ProofCache
from ledger.stateless_cache import StatelessCache
from ledger.store import MemoryStore
from ledger.tx import Tx, decode_tx
from node.app import LedgerApp
from node.mempool import Mempool
from node.services import Accepted
from tests.spec.ledger_world import World


def _count_stateless(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = rules.check_stateless

    def counted(*args: object, **kwargs: object) -> None:
        calls[0] += 1
        original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger_execute, "check_stateless", counted)
    return calls


def _attests(world: World, count: int) -> list[BuiltTx]:
    return [
        build_attest(world.bank_b.identity, world.chain_id, "doc", bytes([n]) * 32, nonce=n)
        for n in range(1, count + 1)
    ]


def _execute(
    world: World, store: MemoryStore, attests: list[BuiltTx], cache: StatelessCache
) -> ExecutedBatch:
    return execute_batch(
        store,
        world.genesis,
        1,
        [a.encode() for a in attests],
        world.metadata(store),
        stateless_checked=cache.checked,
    )


def test_execution_skips_the_checks_the_mempool_ran_on_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every node checked each tx's signatures at admission and again when its block
    executed (one ed25519 verify per tx per node, wasted); now the mempool's pass counts."""
    world = World()
    store = world.new_store()
    cache = StatelessCache()
    mempool = Mempool(store, world.genesis, ProofCache(), stateless_cache=cache)
    attests = _attests(world, 5)
    for attest in attests:
        assert isinstance(mempool.admit(attest.encode(), 0), Accepted)
    assert len(cache) == 5
    calls = _count_stateless(monkeypatch)
    executed = _execute(world, store, attests, cache)
    assert executed.result.tx_ids == tuple(a.tx_id for a in attests)
    assert calls[0] == 0


def test_other_bytes_with_the_same_tx_id_are_still_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cache is keyed by the exact bytes: the same body with a forged signature has the
    same tx id but is other bytes, so execution checks it and rejects it."""
    world = World()
    store = world.new_store()
    cache = StatelessCache()
    good = build_attest(world.bank_b.identity, world.chain_id, "doc", b"\1" * 32, nonce=1)
    cache.add(good.encode(), decode_tx(good.encode(), world.chain_id, max_tx_bytes=1 << 20))
    forged = dataclasses.replace(good.tx, signature=bytes(64)).encode()
    assert Tx.decode(forged).body == good.tx.body
    calls = _count_stateless(monkeypatch)
    executed = execute_batch(
        store, world.genesis, 1, [forged], world.metadata(store), stateless_checked=cache.checked
    )
    assert calls[0] == 1
    assert executed.result.tx_ids == ()
    assert [r.reason_code for r in executed.rejected] == ["BAD_SIGNATURE"]


def test_the_cache_is_bounded_oldest_first() -> None:
    world = World()
    cache = StatelessCache(capacity=2)
    attests = _attests(world, 3)
    for attest in attests:
        cache.add(attest.encode(), decode_tx(attest.encode(), world.chain_id, max_tx_bytes=1 << 20))
    assert len(cache) == 2
    assert cache.checked(attests[0].encode()) is None
    assert [cache.checked(a.encode()) is not None for a in attests[1:]] == [True, True]


def test_the_cache_is_bounded_in_bytes_too() -> None:
    """Keyed by the tx bytes themselves, it keeps them: a flood of large txs must not
    hold ``capacity`` of them. Over ``max_bytes`` the oldest go first."""
    world = World()
    attests = [a.encode() for a in _attests(world, 3)]
    size = len(attests[0])
    cache = StatelessCache(max_bytes=2 * size + size // 2)
    for payload in attests:
        cache.add(payload, decode_tx(payload, world.chain_id, max_tx_bytes=1 << 20))
    assert len(cache) == 2
    assert cache.checked(attests[0]) is None
    assert all(cache.checked(p) is not None for p in attests[1:])
    cache.add(attests[2], decode_tx(attests[2], world.chain_id, max_tx_bytes=1 << 20))
    assert len(cache) == 2  # the same bytes again count once
    copy = bytes(bytearray(attests[1]))  # another object with the same bytes
    assert copy is not attests[1]
    assert cache.checked(copy) is not None


def test_execution_takes_the_mempools_decoded_tx_instead_of_decoding_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Execution decoded every payload the mempool had decoded already (about a tenth
    of a node's CPU per attest); it now takes the mempool's decoded tx for the same
    bytes, and decodes only bytes the mempool never passed."""
    world = World()
    store = world.new_store()
    cache = StatelessCache()
    mempool = Mempool(store, world.genesis, ProofCache(), stateless_cache=cache)
    attests = _attests(world, 4)
    for attest in attests[:3]:
        assert isinstance(mempool.admit(attest.encode(), 0), Accepted)
    decodes = [0]
    original = decode_block_tx

    def counted(*args: Any, **kwargs: Any) -> Any:
        decodes[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(ledger_execute, "decode_block_tx", counted)
    executed = _execute(world, store, attests, cache)
    assert executed.result.tx_ids == tuple(a.tx_id for a in attests)
    assert decodes[0] == 1  # only the fourth, which the mempool never saw


def _count_applies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = rules.apply_tx

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(ledger_execute, "apply_tx", counted)
    return calls


def test_execution_takes_the_mempools_recorded_apply_where_its_reads_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each node ran every tx's stateful rules at admission and again at execution,
    mostly on the same values (a bank's member record and last nonce). Execution now
    merges the admission's recorded writes where the values it read still hold, and
    runs the rules where they do not: here the block orders nonce 2 before nonce 1,
    so nonce 2 read a last nonce of 1 that is 0 in the block, and nonce 1 is replayed."""
    world = World()
    store = world.new_store()
    cache = StatelessCache()
    mempool = Mempool(store, world.genesis, ProofCache(), stateless_cache=cache)
    attests = _attests(world, 4)
    for attest in attests:
        assert isinstance(mempool.admit(attest.encode(), 0), Accepted)
    calls = _count_applies(monkeypatch)
    in_order = [a.encode() for a in attests]
    executed = execute_batch(
        store,
        world.genesis,
        1,
        in_order,
        world.metadata(store),
        stateless_checked=cache.checked,
        recorded_applies=cache.applied,
    )
    assert calls[0] == 0
    assert executed.result.tx_ids == tuple(a.tx_id for a in attests)
    swapped = [in_order[1], in_order[0], *in_order[2:]]
    reordered = execute_batch(
        store,
        world.genesis,
        1,
        swapped,
        world.metadata(store),
        stateless_checked=cache.checked,
        recorded_applies=cache.applied,
    )
    assert calls[0] == 2
    spec = execute_batch(store, world.genesis, 1, swapped, world.metadata(store))
    assert reordered.block.encode() == spec.block.encode()
    assert reordered.rejected == spec.rejected
    assert [r.reason_code for r in spec.rejected] == ["REPLAYED"]


def test_the_node_executes_with_the_mempools_recorded_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``LedgerApp`` hands execution the cache's recorded results, not only its decodes."""
    world = World()
    store = world.new_store()
    cache = StatelessCache()
    mempool = Mempool(store, world.genesis, ProofCache(), stateless_cache=cache)
    for attest in _attests(world, 3):
        assert isinstance(mempool.admit(attest.encode(), 0), Accepted)
    requests = mempool.take_unfed(3)
    calls = _count_applies(monkeypatch)
    app = LedgerApp(store, world.genesis, ProofCache(), cache)
    metadata = ProposalMetadata(world.metadata(store).timestamp_ms, 0)
    applied = app.execute(Execute(1, requests, metadata, CommitCertificate(0, 1, bytes(32), ())))
    assert len(applied.tx_ids) == 3
    assert calls[0] == 0


def test_a_recorded_apply_is_kept_only_for_bytes_in_the_cache() -> None:
    world = World()
    cache = StatelessCache(capacity=1)
    first, second = (a.encode() for a in _attests(world, 2))
    store = world.new_store()
    mempool = Mempool(store, world.genesis, ProofCache(), stateless_cache=cache)
    assert isinstance(mempool.admit(first, 0), Accepted)
    assert cache.applied(first) is not None
    assert isinstance(mempool.admit(second, 0), Accepted)
    assert cache.applied(first) is None  # evicted with its decoded tx
    assert cache.applied(second) is not None
