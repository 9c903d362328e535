"""The rebuilds that skip unchanged reads (in place, ``ledger.pending_index``, or in
full with ``ledger.pending_changes``) against the one that looks every survivor's
reads up: two mempools over one store, driven alike.

After each block the first is told the block's state writes (as the runtime does),
the second only its tx ids. Blocks take random subsets of what is held, in random
order, with txs nobody admitted, double spends and rejections (the walk of
``test_mempool_shares_invariant``), so survivors are rebased, re-run and dropped.
After every step both must hold the same txs in the same order with the same
recorded results, the same pending view, and answer the same.

Seeds: VEIL_REBUILD_SEEDS (default 40), VEIL_REBUILD_STEPS (default 150).
"""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest

from ledger.apply import apply_block, commit_applied
from ledger.mempool import CheckedTx, PendingTxs
from ledger.proof_cache import ProofCache
from ledger.reasons import TxRejected
from ledger.state import StateDelta
from ledger.store import MemoryStore
from node.mempool import Mempool, MempoolLimits, ProofWanted
from tests.property.test_mempool_shares_invariant import _world_and_pool
from tests.spec.ledger_world import World

SEEDS = int(os.environ.get("VEIL_REBUILD_SEEDS", "40"))
STEPS = int(os.environ.get("VEIL_REBUILD_STEPS", "150"))
_skipping: list[Mempool] = []
"""The current run's skipping mempool, for the branch counts."""


def _commit_block(
    world: World, store: MemoryStore, raw: list[bytes]
) -> tuple[tuple[bytes, ...], StateDelta, frozenset[bytes]]:
    """Execute ``raw`` as the next block and commit it: its tx ids, its state writes
    and the bytes it rejected."""
    executed = world.execute(store, raw)
    result = apply_block(store, executed.block, world.genesis)
    commit_applied(store, executed.block, result, certificate=b"c", metadata=executed.metadata)
    return result.tx_ids, result.delta, frozenset(r.payload for r in executed.rejected)


def _same(skipping: Mempool, looking: Mempool, where: str) -> None:
    a, b = skipping._entries, looking._entries
    assert list(a) == list(b), f"{where}: held txs differ"
    for tx_id, entry in a.items():
        other = b[tx_id].checked
        assert entry.checked.delta.items() == other.delta.items(), f"{where}: delta"
        assert entry.checked.reads == other.reads, f"{where}: reads"
        assert entry.checked.receipt == other.receipt, f"{where}: receipt"
    view_a = skipping._pending.view.delta().items()
    assert view_a == looking._pending.view.delta().items(), f"{where}: pending view"
    assert len(skipping._pending) == len(looking._pending)


def _outcome(outcome: object) -> object:
    return type(outcome).__name__ if isinstance(outcome, ProofWanted) else outcome


def run(seed: int, steps: int = STEPS) -> list[str]:
    rng = random.Random(seed)
    world, pool = _world_and_pool()
    store = world.new_store()
    limits = MempoolLimits(max_txs=rng.choice([8, 16, 40]), min_backlog_txs=40)
    skipping = Mempool(store, world.genesis, ProofCache(), limits)
    looking = Mempool(store, world.genesis, ProofCache(), limits)
    _skipping[:] = [skipping]
    outstanding: list[tuple[ProofWanted, ProofWanted]] = []
    log: list[str] = []
    for step in range(steps):
        op = rng.choices(["admit", "finish", "block"], weights=[10, 5, 3])[0]
        if op == "admit":
            fresh = [t for t in pool if t.tx_id not in skipping and not store.tx_location(t.tx_id)]
            tx = fresh[0] if fresh and rng.random() < 0.6 else rng.choice(pool)
            got = skipping.admit(tx.encode(), step), looking.admit(tx.encode(), step)
            assert _outcome(got[0]) == _outcome(got[1]), f"seed {seed} step {step}: {got}"
            if isinstance(got[0], ProofWanted) and isinstance(got[1], ProofWanted):
                outstanding.append((got[0], got[1]))
            log.append(f"{step} admit {tx.tx_id.hex()[:6]} -> {_outcome(got[0])}")
        elif op == "finish" and outstanding:
            wanted = outstanding.pop(rng.randrange(len(outstanding)))
            proof_ok = rng.random() < 0.9
            got = (
                skipping.finish(wanted[0], proof_ok, balanced=True),
                looking.finish(wanted[1], proof_ok, balanced=True),
            )
            assert got[0] == got[1], f"seed {seed} step {step}: {got}"
            log.append(f"{step} finish -> {got[0]}")
        elif op == "block":
            held = [e.tx_bytes for e in skipping._entries.values()]
            chosen = [b for b in held if rng.random() < 0.6]
            chosen += [t.encode() for t in pool if rng.random() < 0.04]
            rng.shuffle(chosen)
            chosen = list(dict.fromkeys(chosen))[: world.genesis.params.max_block_txs]
            tx_ids, writes, rejected = _commit_block(world, store, chosen)
            skipping.note_committed(store.height(), tx_ids, writes)
            looking.note_committed(store.height(), tx_ids)
            dropped = (
                skipping.on_block(store, executed=rejected),
                looking.on_block(store, executed=rejected),
            )
            pairs = [[(t, e.reason, e.detail) for t, e in d] for d in dropped]
            assert pairs[0] == pairs[1], f"seed {seed} step {step}: dropped {pairs}"
            log.append(f"{step} block of {len(chosen)}: dropped {len(pairs[0])}")
        _same(skipping, looking, f"seed {seed} step {step} ({log[-1] if log else op})")
    return log


@pytest.mark.parametrize("seed", range(SEEDS))
def test_skipping_unchanged_reads_rebuilds_what_looking_them_up_does(seed: int) -> None:
    run(seed)


def test_the_walk_reaches_every_branch_of_the_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the seeds, the skipping mempool rebuilds in place and in full; in full, it
    re-adds survivors without lookups, looks up
    survivors whose reads may have changed and finds them the same, rebased or re-run,
    and drops some."""
    seen: Counter[str] = Counter()
    unchanged, readmit = PendingTxs.readmit_unchanged, PendingTxs.readmit

    def counted_unchanged(self: PendingTxs, checked: CheckedTx) -> None:
        seen["without lookups"] += 1
        unchanged(self, checked)

    def counted_readmit(self: PendingTxs, checked: CheckedTx, **kwargs: bool) -> CheckedTx:
        mine = self is _skipping[0]._pending  # not the looking mempool's
        try:
            added = readmit(self, checked, **kwargs)
        except TxRejected:
            seen["dropped"] += mine
            raise
        seen["looked up, same" if added is checked else "looked up, changed"] += mine
        return added

    monkeypatch.setattr(PendingTxs, "readmit_unchanged", counted_unchanged)
    monkeypatch.setattr(PendingTxs, "readmit", counted_readmit)
    for seed in range(SEEDS):
        run(seed, 80)
        seen.update(_skipping[0].rebuilds)
    assert set(seen) == {
        *("without lookups", "looked up, same", "looked up, changed", "dropped"),
        *("in_place", "in_full"),
    }
    assert seen["without lookups"] > seen["looked up, same"], seen
