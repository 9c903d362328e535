"""Randomized check of node.mempool's share counts (node/mempool.py, step 3).

Drives one Mempool through admit / finish / abandon / on_block (committed,
executed-rejected and readmit-dropped txs) / refeed sequences and checks after
every step that the share counters match what the mempool holds:

* sum(held_by_origin().values()) == len(mempool) + mempool.in_admission()
* the per-tx records cover exactly the held ids (entries + in admission)
* the byte counters equal the bytes actually held, per origin

Seeds: VEIL_SHARE_SEEDS (default 40), VEIL_SHARE_STEPS (default 150).
"""

from __future__ import annotations

import functools
import os
import random
from collections import Counter

import pytest

from ledger.apply import apply_block, commit_applied
from ledger.build import BuiltTx, build_attest
from ledger.proof_cache import ProofCache
from ledger.store import MemoryStore
from node.mempool import UNKNOWN_MEMBER, Mempool, MempoolLimits, ProofWanted
from node.services import Accepted
from tests.spec.ledger_world import EUR, USD, Party, World, _party

SEEDS = int(os.environ.get("VEIL_SHARE_SEEDS", "40"))
STEPS = int(os.environ.get("VEIL_SHARE_STEPS", "150"))


def _build_pool(world: World) -> list[BuiltTx]:
    """Txs of several members, with and without range proofs, some dependent on others,
    some signed by an account whose registration is itself only pending."""
    pool: list[BuiltTx] = []
    newbie: Party = _party("newbie")
    newbie2: Party = _party("newbie2")
    # bank A registers newbie and newbie2 (their txs: UNKNOWN_MEMBER while pending)
    pool.append(world.register(world.bank_a, newbie, nonce=world.next_nonce(world.bank_a)))
    pool.append(world.register(world.bank_b, newbie2, nonce=world.next_nonce(world.bank_b)))
    # newbie gets USD (issue to an account registered by a pending tx) and spends it
    issue = world.issue(world.bank_a, USD, [newbie.plan(7)])
    pool.append(issue)
    pool.append(world.transfer(newbie, USD, [World.spend(issue, 0)], [world.alice.plan(7)]))
    issue = world.issue(world.bank_b, EUR, [newbie2.plan(5)])
    pool.append(issue)
    pool.append(world.transfer(newbie2, EUR, [World.spend(issue, 0)], [world.carol.plan(5)]))
    for _ in range(6):
        for bank in (world.bank_a, world.bank_b):
            digest = (len(pool) + 1).to_bytes(32, "big")
            nonce = world.next_nonce(bank)
            pool.append(build_attest(bank.identity, world.chain_id, "doc", digest, nonce=nonce))
    for owner, bank, asset in ((world.alice, world.bank_a, USD), (world.carol, world.bank_b, EUR)):
        for _ in range(3):
            issue = world.issue(bank, asset, [owner.plan(10)])
            pool.append(issue)
            pool.append(world.transfer(owner, asset, [World.spend(issue, 0)], [world.bob.plan(10)]))
    # a second spend of the first alice issue (a double spend while the first is pending)
    first_alice_issue = next(t for t in pool if t.openings and t.openings[0].value == 10)
    pool.append(
        world.transfer(
            world.alice, USD, [World.spend(first_alice_issue, 0)], [world.carol.plan(10)]
        )
    )
    return pool


@functools.cache
def _world_and_pool() -> tuple[World, list[BuiltTx]]:
    """Built once: proving the pool's transfers is most of the test's time."""
    world = World()
    return world, _build_pool(world)


def check_invariant(mempool: Mempool, where: str) -> None:
    held = mempool.held_by_origin()
    total = sum(held.values())
    assert total == len(mempool) + mempool.in_admission(), (
        f"{where}: held_by_origin sums to {total}, "
        f"mempool holds {len(mempool)} + {mempool.in_admission()} in admission"
    )
    assert all(v > 0 for v in held.values()), f"{where}: a zero or negative count {held}"
    records = mempool._held_origin
    ids = set(mempool._entries) | set(mempool._in_admission)
    assert set(records) == ids, f"{where}: records {len(records)} vs held ids {len(ids)}"
    actual_bytes: Counter[bytes] = Counter()
    for tx_id, entry in mempool._entries.items():
        actual_bytes[records[tx_id][0]] += len(entry.tx_bytes)
    for tx_id, tx_bytes in mempool._in_admission.items():
        actual_bytes[records[tx_id][0]] += len(tx_bytes)
    counted = {m: b for m, b in mempool._bytes_by_origin.items() if b}
    assert counted == {m: b for m, b in actual_bytes.items() if b}, f"{where}: bytes drift"


def _commit_block(world: World, store: MemoryStore, raw: list[bytes]) -> frozenset[bytes]:
    """Execute ``raw`` as the next block (rejections allowed) and commit it; the
    rejected bytes."""
    executed = world.execute(store, raw)
    result = apply_block(store, executed.block, world.genesis)
    commit_applied(store, executed.block, result, certificate=b"c", metadata=executed.metadata)
    return frozenset(r.payload for r in executed.rejected)


def run(seed: int, steps: int = STEPS) -> list[str]:
    rng = random.Random(seed)
    world, pool = _world_and_pool()
    store = world.new_store()
    cache = ProofCache()
    limits = MempoolLimits(
        max_txs=rng.choice([4, 8, 12, 40]),
        max_bytes=rng.choice([20_000, 60_000, 64 << 20]),
        min_backlog_txs=rng.choice([1, 2, 4, 8]),
    )
    mempool = Mempool(store, world.genesis, cache, limits)
    outstanding: list[ProofWanted] = []
    dead: set[bytes] = set()
    log: list[str] = []
    for step in range(steps):
        op = rng.choices(
            ["admit", "finish", "abandon", "block", "refeed", "stale"],
            weights=[10, 4, 1, 2, 1, 1],
        )[0]
        if op == "admit":
            fresh = [
                t
                for t in pool
                if t.tx_id not in mempool
                and t.tx_id not in mempool._in_admission
                and store.tx_location(t.tx_id) is None
                and t.tx_id not in dead
            ]
            # mostly the next tx in build order (nonces, dependencies), sometimes any
            tx = fresh[0] if fresh and rng.random() < 0.6 else rng.choice(pool)
            outcome = mempool.admit(tx.encode(), step, from_client=rng.random() < 0.5)
            if isinstance(outcome, ProofWanted):
                outstanding.append(outcome)
            elif type(outcome).__name__ == "Rejected":
                dead.add(tx.tx_id)
            log.append(f"{step} admit {tx.tx_id.hex()[:6]} -> {type(outcome).__name__}")
        elif op in ("finish", "abandon") and outstanding:
            wanted = outstanding.pop(rng.randrange(len(outstanding)))
            if op == "finish":
                outcome = mempool.finish(
                    wanted, proof_ok=rng.random() < 0.85, balanced=rng.random() < 0.5
                )
                log.append(f"{step} finish -> {type(outcome).__name__}")
            else:
                mempool.abandon(wanted)
                log.append(f"{step} abandon")
        elif op == "stale" and outstanding:
            # finish an admission twice / after a block settled it
            wanted = rng.choice(outstanding)
            outcome = mempool.finish(wanted, proof_ok=True, balanced=True)
            outstanding.remove(wanted)
            log.append(f"{step} stale finish -> {type(outcome).__name__}")
        elif op == "block":
            held_bytes = [e.tx_bytes for e in mempool._entries.values()]
            held_bytes += list(mempool._in_admission.values())
            chosen = [b for b in held_bytes if rng.random() < 0.5]
            chosen += [t.encode() for t in pool if rng.random() < 0.05]
            rng.shuffle(chosen)
            chosen = list(dict.fromkeys(chosen))[: world.genesis.params.max_block_txs]
            rejected = _commit_block(world, store, chosen)
            executed = rejected if rng.random() < 0.7 else frozenset()
            if rng.random() < 0.5:
                ids = [tid for tid in (mempool._entries | {k: None for k in mempool._in_admission})]
                ids = [t for t in ids if store.tx_location(t) is not None]
                mempool.note_committed(store.height(), ids)
            dropped = mempool.on_block(store, executed=executed)
            log.append(
                f"{step} block h={store.height()} txs={len(chosen)} rejected={len(rejected)} "
                f"dropped={len(dropped)}"
            )
        elif op == "refeed":
            mempool.take_unfed(rng.randrange(1, 5))
            mempool.refeed_all()
            log.append(f"{step} refeed")
        check_invariant(mempool, f"seed {seed} step {step} ({log[-1] if log else op})")
    # settle everything still outstanding; the invariant must hold at the end, with nothing held
    for wanted in outstanding:
        mempool.finish(wanted, proof_ok=True)
        check_invariant(mempool, f"seed {seed} final finish")
    return log


@pytest.mark.parametrize("seed", range(SEEDS))
def test_share_counts_never_drift(seed: int) -> None:
    run(seed)


def test_a_pending_accounts_txs_count_for_the_bank_registering_it() -> None:
    """An account registered by a pending tx counts for its bank at once: one shared
    bucket for all such accounts let one bank's new accounts crowd out another's."""
    world, pool = _world_and_pool()
    mempool = Mempool(world.new_store(), world.genesis, ProofCache())
    register = pool[0]
    assert isinstance(mempool.admit(register.encode(), 0), Accepted)
    # newbie's issue (signed by bank A) then newbie's spend (signed by newbie)
    newbie_issue, newbie_spend = pool[2], pool[3]
    w = mempool.admit(newbie_issue.encode(), 0)
    assert isinstance(w, ProofWanted)
    assert isinstance(mempool.finish(w, proof_ok=True), Accepted)
    w = mempool.admit(newbie_spend.encode(), 0)
    if isinstance(w, ProofWanted):
        w = mempool.finish(w, proof_ok=True)
    assert isinstance(w, Accepted), w
    assert mempool.held_by_origin() == {world.bank_a.key: 3}
    assert UNKNOWN_MEMBER not in mempool.held_by_origin()
