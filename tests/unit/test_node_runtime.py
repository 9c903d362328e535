"""Deterministic runtime tests: 4 NodeRuntimes in one event loop over a seeded
in-memory network (tests/node_net.py), with real LevelDB stores and WALs in tmp
dirs and real txs (attests, an issue, a confidential transfer).

Replay a failure with ``VEIL_NODE_SEED=<seed> pytest tests/unit/test_node_runtime.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from consensus.events import Event, StateTransferCompleted
from ledger.build import BuiltTx, build_attest, seal_outputs, sign_tx
from ledger.chain import open_chain
from ledger.leveldb_store import LevelDBStore
from ledger.stored_block import stored_block_claim
from ledger.tx import IssueBody
from node.catchup import FetchRequest
from node.mempool import MempoolLimits
from node.proof_pool import ProofVerifier, inline_verifier
from node.runtime import GOSSIP_FAULT, NodeRuntime, RuntimeSettings
from node.serial_worker import SerialWorker
from node.services import (
    Accepted,
    Busy,
    Committed,
    Duplicate,
    NodeServices,
    Pending,
    Rejected,
    TxRejectedStatus,
    Unknown,
)
from node.wal import WriteAheadLog
from privacy import group
from privacy.rangeproof import RangeStatement
from tests.node_net import MemoryNetwork
from tests.node_world import validator_identities
from tests.spec.ledger_world import EUR, USD, World

SEEDS = [int(os.environ["VEIL_NODE_SEED"])] if "VEIL_NODE_SEED" in os.environ else [11, 12]
NODES = 4


def small_world() -> World:
    """The spec world with checkpoints every 4 blocks and a window of 8, so a node
    that misses a dozen blocks must catch up by state transfer."""
    world = World()
    params = dataclasses.replace(
        world.genesis.params,
        checkpoint_interval_blocks=4,
        watermark_window_blocks=8,
        view_change_timeout_ms=1_000,
    )
    world.genesis = dataclasses.replace(world.genesis, params=params)
    world.chain_id = world.genesis.chain_id
    return world


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class Cluster:
    def __init__(self, tmp_path: Path, world: World, network: MemoryNetwork) -> None:
        self.tmp_path = tmp_path
        self.world = world
        self.network = network
        self.identities = validator_identities(world)
        self.runtimes: dict[int, NodeRuntime] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._closers: dict[int, list[Callable[[], None]]] = {}
        # No idle tip probe unless a test asks for one: it would race the core's state
        # transfer and the start-up catch-up that other tests observe.
        self.settings = RuntimeSettings(tick_ms=20, mempool=MempoolLimits(), idle_probe_s=3600)

    @classmethod
    def started(cls, tmp_path: Path, seed: int, **settings: Any) -> Cluster:
        """``NODES`` runtimes of ``small_world()`` on a seeded network, all started;
        ``settings`` replace the cluster's ``RuntimeSettings`` fields."""
        cluster = cls(tmp_path, small_world(), MemoryNetwork(seed))
        cluster.settings = dataclasses.replace(cluster.settings, **settings)
        for index in range(NODES):
            cluster.start(index)
        return cluster

    def open_wal(self, index: int) -> WriteAheadLog:
        return WriteAheadLog(self.tmp_path / f"n{index}" / "wal")

    def start(self, index: int, proof_verifier: ProofVerifier = inline_verifier) -> NodeRuntime:
        (self.tmp_path / f"n{index}").mkdir(exist_ok=True)
        store = LevelDBStore(self.tmp_path / f"n{index}" / "chain", block_claims=stored_block_claim)
        open_chain(store, self.world.genesis)
        wal = self.open_wal(index)
        worker = SerialWorker()
        runtime = NodeRuntime(
            genesis=self.world.genesis,
            identity=self.identities[index],
            store=store,
            wal=wal,
            links=self.network.links(index, NODES),
            proof_verifier=proof_verifier,
            wall_clock_ms=wall_clock_ms,
            settings=self.settings,
            worker=worker,
        )
        self.runtimes[index] = runtime
        self.network.nodes[index] = runtime
        self.network.down.discard(index)
        self.tasks[index] = asyncio.get_running_loop().create_task(runtime.run())
        self._closers[index] = [worker.close, wal.close, store.close]
        return runtime

    async def crash(self, index: int) -> None:
        """Cut the node off and cancel it mid-flight (no drain), then close its files."""
        self.network.down.add(index)
        task = self.tasks.pop(index)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for close in self._closers.pop(index):
            close()
        del self.network.nodes[index]

    async def stop_all(self) -> None:
        for index in list(self.tasks):
            # Unreachable first: a peer still catching up must see a dead link, not
            # a closed store (a real peer's link drops when it stops).
            self.network.down.add(index)
            self.runtimes[index].stop("test over")
            await asyncio.wait_for(self.tasks.pop(index), 10)
            for close in self._closers.pop(index):
                close()

    async def until(self, what: str, condition: Callable[[], bool], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            for index, task in self.tasks.items():
                if task.done():
                    task.result()  # raise what stopped it
                    raise AssertionError(f"seed {self.network.seed}: node {index} stopped")
            if time.monotonic() > deadline:
                heights = {i: r.store.height() for i, r in self.runtimes.items()}

                raise AssertionError(
                    f"seed {self.network.seed}: timed out waiting for {what}; heights {heights}"
                )
            await asyncio.sleep(0.01)

    async def until_one_height(
        self, what: str = "all at one height", timeout_s: float = 60
    ) -> None:
        """Until every running node's store is at the same height."""
        await self.until(
            what, lambda: len({r.store.height() for r in self.runtimes.values()}) == 1, timeout_s
        )

    async def commit_one_per_block(self, txs: list[BuiltTx], via: int = 0) -> int:
        """Submit each tx to node ``via`` and wait for its commit before the next (one
        block each); node ``via``'s height after the last."""
        runtime = self.runtimes[via]
        for tx in txs:
            assert await runtime.submit(tx.encode()) == Accepted(tx.tx_id)
            status = await runtime.wait_for_commit(tx.tx_id, 30)
            assert isinstance(status, Committed), f"seed {self.network.seed}: {status}"
        return runtime.store.height()

    def assert_same_chain(self, indices: list[int]) -> int:
        stores = [self.runtimes[i].store for i in indices]
        height = stores[0].height()
        assert all(s.height() == height for s in stores), f"seed {self.network.seed}"
        for h in range(height + 1):
            assert len({s.block_hash_at(h) for s in stores}) == 1, f"seed {self.network.seed}"
        assert len({s.state_root() for s in stores}) == 1, f"seed {self.network.seed}"
        return height


def _attest(world: World, nonce: int) -> BuiltTx:
    digest = nonce.to_bytes(32, "big")
    return build_attest(world.bank_b.identity, world.chain_id, "doc", digest, nonce=nonce)


def _committed_everywhere(cluster: Cluster, tx_id: bytes, indices: list[int]) -> bool:
    return all(isinstance(cluster.runtimes[i].tx_status(tx_id), Committed) for i in indices)


async def _restart_behind(
    cluster: Cluster, *, chunk_blocks: int | None = None
) -> tuple[NodeRuntime, int]:
    """Node 3 crashed while 12 one-attest blocks committed, then started again (its
    task has not run yet; ``chunk_blocks`` sets its catch-up's chunk); it and the
    others' height."""
    await cluster.crash(3)
    txs = [_attest(cluster.world, n) for n in range(1, 13)]
    behind = await cluster.commit_one_per_block(txs)
    assert behind >= 12
    if chunk_blocks is not None:
        cluster.settings = dataclasses.replace(cluster.settings, catchup_chunk_blocks=chunk_blocks)
    return cluster.start(3), behind


async def _partition_behind(cluster: Cluster, blocks: int) -> int:
    """Node 3 cut off (still running, its start-up catch-up over) while ``blocks``
    one-attest blocks committed; the others' height. Heal with ``network.down``."""
    # The start-up catch-up must be over before the cut: one still retrying its
    # fetches would fetch the blocks itself after the heal, and the core's state
    # transfer (what the callers test) waits for it to end.
    await cluster.until(
        "node 3's start-up catch-up over", cluster.runtimes[3]._startup_catchup_over.is_set
    )
    cluster.network.down.add(3)
    txs = [_attest(cluster.world, n) for n in range(1, blocks + 1)]
    behind = await cluster.commit_one_per_block(txs)
    assert cluster.runtimes[3].store.height() == 0
    return behind


def _record_fetches(
    runtime: NodeRuntime, heights_at_fetch: dict[int, int], *, delay_s: float = 0.0
) -> list[int]:
    """Wrap ``runtime``'s catch-up fetches: the height its worker's store had when each
    range was first asked for goes in ``heights_at_fetch``; the heights fetched are
    returned (in fetch order, repeats kept). ``delay_s``: slow links."""
    store = runtime.app.store  # the one the worker thread writes
    fetch = runtime._fetch
    fetched: list[int] = []

    async def recorded(request: FetchRequest) -> list[bytes] | str:
        heights_at_fetch.setdefault(request.first_height, store.height())
        if delay_s:
            await asyncio.sleep(delay_s)
        reply = await fetch(request)
        if not isinstance(reply, str):
            fetched.extend(range(request.first_height, request.first_height + len(reply)))
        return reply

    runtime._fetch = recorded  # type: ignore[method-assign]
    return fetched


def _overlapped_fetches(heights_at_fetch: dict[int, int]) -> tuple[list[int], list[int]]:
    """The ranges fetched after the first, and those of them asked for before the
    chunk ending just below them had all been applied (both sorted)."""
    later = {f: h for f, h in heights_at_fetch.items() if f > min(heights_at_fetch)}
    overlapped = [first for first, height in later.items() if height < first - 1]
    return sorted(later), sorted(overlapped)


@pytest.mark.parametrize("seed", SEEDS)
def test_four_runtimes_commit_the_same_chain_of_real_txs(tmp_path: Path, seed: int) -> None:
    async def scenario() -> None:
        world = small_world()
        cluster = Cluster(tmp_path, world, MemoryNetwork(seed, drop_rate=0.02))
        for index in range(NODES):
            cluster.start(index)
        try:
            attests = [_attest(world, n) for n in range(1, 5)]
            issue = world.issue(world.bank_a, USD, [world.alice.plan(10), world.alice.plan(5)])
            # Each tx goes to one node only; gossip brings it to the others. Txs of
            # different signers race; one signer's nonces go in order, each after
            # the previous one committed (a later nonce committed first would make
            # the earlier one REPLAYED, whatever node it went to).
            first = await asyncio.gather(
                cluster.runtimes[1].submit(attests[0].encode()),
                cluster.runtimes[3].submit(issue.encode()),
            )
            assert list(first) == [Accepted(attests[0].tx_id), Accepted(issue.tx_id)]
            assert await cluster.runtimes[3].submit(issue.encode()) == Duplicate(issue.tx_id)
            for index, attest in enumerate(attests[1:]):
                await cluster.runtimes[index].wait_for_commit(attests[index].tx_id, 30)
                outcome = await cluster.runtimes[index].submit(attest.encode())
                assert outcome == Accepted(attest.tx_id), f"seed {seed}: {outcome}"
            everyone = list(range(NODES))
            await cluster.until(
                "issue committed",
                lambda: _committed_everywhere(cluster, issue.tx_id, everyone),
            )
            spend = World.spend(issue, 0)
            transfer = world.transfer(
                world.alice, USD, [spend], [world.bob.plan(4), world.alice.plan(6)]
            )
            rival = world.transfer(world.alice, USD, [spend], [world.carol.plan(10)])
            assert await cluster.runtimes[2].submit(transfer.encode()) == Accepted(transfer.tx_id)
            status = await cluster.runtimes[2].wait_for_commit(transfer.tx_id, 30)
            assert isinstance(status, Committed), f"seed {seed}: {status}"
            outcome = await cluster.runtimes[1].submit(rival.encode())
            assert isinstance(outcome, Rejected) and outcome.reason_code == "DOUBLE_SPEND"
            txs = [*attests, issue, transfer]
            await cluster.until(
                "all txs committed everywhere",
                lambda: all(_committed_everywhere(cluster, t.tx_id, everyone) for t in txs),
            )
            await cluster.until_one_height("equal heights")
            height = cluster.assert_same_chain(everyone)
            assert height >= 2
            services: NodeServices = cluster.runtimes[1]  # the production NodeServices
            # The store's height moves on the worker thread, the gauge right after on the loop.
            await cluster.until(
                "the height gauge",
                lambda: f"veil_height {float(height)}" in services.metrics.render().decode(),
            )
            rendered = services.metrics.render().decode()
            assert 'veil_txs_rejected_total{reason="DOUBLE_SPEND"} 1.0' in rendered
            assert all(not r.stopped for r in cluster.runtimes.values())
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_client_is_told_busy_past_the_backlog_bound_and_gossip_still_spreads(
    tmp_path: Path,
) -> None:
    """Issue 9 overload: the mempool used to admit up to its hard bound (20,000 txs,
    a minute of commits on the devnet), so every admitted tx waited that long.
    Here the bound is 2 pending txs: a third client tx gets 503 MEMPOOL_FULL with
    Retry-After, the two admitted ones still reach every node and commit, and the
    third is admitted once they have and its Retry-After has passed (until then
    its account stays refused: ``node.mempool``, step 3)."""

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, SEEDS[0], mempool=MempoolLimits(min_backlog_txs=2))
        world = cluster.world
        try:
            attests = [_attest(world, n) for n in range(1, 4)]
            # Admission of an attest never awaits, so all three are decided before
            # anything can commit.
            outcomes = await asyncio.gather(
                *(cluster.runtimes[1].submit(a.encode()) for a in attests)
            )
            retry_at_s = time.time() + 1
            assert list(outcomes) == [
                Accepted(attests[0].tx_id),
                Accepted(attests[1].tx_id),
                Busy("MEMPOOL_FULL", 1_000),
            ]
            everyone = list(range(NODES))
            await cluster.until(
                "the admitted two committed everywhere",
                lambda: all(_committed_everywhere(cluster, a.tx_id, everyone) for a in attests[:2]),
            )
            third = attests[2]
            await asyncio.sleep(max(0.0, retry_at_s - time.time()))
            assert await cluster.runtimes[1].submit(third.encode()) == Accepted(third.tx_id)
            await cluster.until(
                "the third committed everywhere",
                lambda: _committed_everywhere(cluster, third.tx_id, everyone),
            )
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


@pytest.mark.parametrize("seed", SEEDS)
def test_a_crashed_runtime_restarts_from_its_wal_and_store_and_catches_up(
    tmp_path: Path, seed: int
) -> None:
    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, seed)
        world, network = cluster.world, cluster.network
        everyone = list(range(NODES))
        try:
            first = _attest(world, 1)
            assert await cluster.runtimes[0].submit(first.encode()) == Accepted(first.tx_id)
            await cluster.until(
                "first", lambda: _committed_everywhere(cluster, first.tx_id, everyone)
            )
            await cluster.crash(3)
            # 12 more blocks, more than the watermark window, while node 3 is down.
            for nonce in range(2, 14):
                tx = _attest(world, nonce)
                assert await cluster.runtimes[nonce % 3].submit(tx.encode()) == Accepted(tx.tx_id)
                status = await cluster.runtimes[0].wait_for_commit(tx.tx_id, 30)
                assert isinstance(status, Committed), f"seed {seed}: {status}"
            behind = cluster.runtimes[0].store.height()
            restarted = cluster.start(3)
            assert restarted.store.height() == 1  # the first block, from disk
            # New traffic makes the others' checkpoints reach it.
            for nonce in range(14, 22):
                tx = _attest(world, nonce)
                assert await cluster.runtimes[1].submit(tx.encode()) == Accepted(tx.tx_id)
                await cluster.runtimes[1].wait_for_commit(tx.tx_id, 30)
            await cluster.until_one_height("node 3 at the others' height")
            assert restarted.store.height() > behind
            assert any(fetcher == 3 for fetcher, *_ in network.fetches), f"seed {seed}"
            cluster.assert_same_chain(everyone)
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_partitioned_runtime_rejoins_through_the_cores_state_transfer(tmp_path: Path) -> None:
    seed = SEEDS[0]

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, seed)
        world, network = cluster.world, cluster.network
        everyone = list(range(NODES))
        try:
            await _partition_behind(cluster, 12)  # no restart, no start-up catch-up
            network.down.discard(3)
            for nonce in range(13, 21):
                tx = _attest(world, nonce)
                assert await cluster.runtimes[1].submit(tx.encode()) == Accepted(tx.tx_id)
                await cluster.runtimes[1].wait_for_commit(tx.tx_id, 30)
            await cluster.until_one_height("node 3 at the others' height")
            assert cluster.runtimes[3].state_transfers >= 1, f"seed {seed}"
            cluster.assert_same_chain(everyone)
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_runtime_that_missed_the_last_blocks_of_an_idle_chain_fetches_them(
    tmp_path: Path,
) -> None:
    """No commit follows the blocks it missed, too few for a checkpoint, and the peers
    restarted, so their STATUS replies cannot carry them: nothing tells its core it is
    behind. The idle tip probe asks the peers for blocks. Without it (checked with the
    probe off) node 3 stayed at 0 until the next commit; all four nodes SIGKILLed and
    restarted at once left one a block behind in tests/integration/test_node_faults.py."""
    seed = SEEDS[0]

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, seed, idle_probe_s=0.2)
        try:
            await _partition_behind(cluster, 2)
            # The others restart (as after a SIGKILL of all four): their restored logs
            # hold no slot for the blocks node 3 lacks, so its STATUS gets no reply
            # that lets it execute them.
            for index in (0, 1, 2):
                await cluster.crash(index)
            cluster.network.down.add(3)
            for index in (0, 1, 2):
                cluster.start(index)
            for index in (0, 1, 2):
                await cluster.until(
                    f"node {index}'s start-up over",
                    cluster.runtimes[index]._startup_catchup_over.is_set,
                )
            await asyncio.sleep(0.5)
            cluster.network.down.discard(3)  # healed; no tx follows
            await cluster.until_one_height("node 3 at the others' height", timeout_s=20)
            assert cluster.runtimes[3].state_transfers == 0, f"seed {seed}"
            cluster.assert_same_chain(list(range(NODES)))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_restarted_runtime_rebuilds_its_mempool_per_fetched_chunk_not_per_block(
    tmp_path: Path,
) -> None:
    """A node that comes back holds the gossip queued for it while it was down, so a
    mempool rebuild (a re-check of every pending tx) per caught-up block made
    catch-up quadratic: 200 blocks took 40 s on 4 real processes."""
    seed = SEEDS[0]

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, seed)
        try:
            restarted, behind = await _restart_behind(cluster)
            rebuilds: list[int] = []
            on_block = restarted.mempool.on_block

            def counted(state: LevelDBStore, *, executed: frozenset[bytes]) -> object:
                rebuilds.append(state.height())
                return on_block(state, executed=executed)

            restarted.mempool.on_block = counted  # type: ignore[method-assign,assignment]
            # Its tip moves on the worker thread before the loop reaches the rebuild.
            await cluster.until(
                "node 3 caught up at start and rebuilt its mempool",
                lambda: restarted.store.height() == behind and bool(rebuilds),
            )
            # One chunk of catchup_chunk_blocks (64) covers the 12 blocks: one rebuild.
            assert rebuilds == [behind], f"seed {seed}: rebuilt at heights {rebuilds}"
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_restarted_runtime_verifies_fetched_proofs_ahead_in_one_pool_batch(
    tmp_path: Path,
) -> None:
    """Catch-up used to verify each fetched block's proofs as the block executed, a few
    per batch (a batch of 128 costs up to 6x less per proof). Now the proof pool checks
    the chunk's proofs first, as one batch, and execution finds them in the cache; a
    proof the pool calls bad stays unverified, so execution checks it itself."""
    seed = SEEDS[0]

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, seed)
        world = cluster.world
        try:
            await cluster.crash(3)
            issues = [world.issue(world.bank_a, USD, [world.alice.plan(n)]) for n in (1, 2, 3)]
            behind = await cluster.commit_one_per_block(issues)
            pool_batches: list[int] = []

            async def pool(statements: Sequence[RangeStatement]) -> list[int]:
                pool_batches.append(len(statements))
                # The pool "finds" the last issue's proof bad: it must stay unmarked.
                return [len(statements) - 1]

            restarted = cluster.start(3, proof_verifier=pool)
            executed: list[int] = []
            cache = restarted.proof_cache
            inner = cache._batch_verifier

            def counted(statements: Sequence[RangeStatement]) -> list[int]:
                executed.append(len(statements))
                return inner(statements)

            cache._batch_verifier = counted
            await cluster.until("node 3 caught up", lambda: restarted.store.height() == behind)
            assert pool_batches == [3], f"seed {seed}: pool batches {pool_batches}"
            # Execution verified only the proof the pool did not vouch for (it holds).
            assert executed == [1], f"seed {seed}: execution verified {executed}"
            cluster.assert_same_chain(list(range(NODES)))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_restarted_runtime_syncs_each_fetched_run_of_blocks_once(tmp_path: Path) -> None:
    """An fsync per caught-up block was 11 of its 26 ms (idle machine); the blocks are
    certified and can be fetched again, so only the last of each fetched run is
    synced, making the earlier ones durable with it."""
    seed = SEEDS[0]

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, seed)
        try:
            restarted, behind = await _restart_behind(cluster)
            store = restarted.app.store  # the one the worker thread writes
            assert isinstance(store, LevelDBStore)
            backend = store.backend
            write = backend.write
            syncs: list[bool] = []

            def recorded(batch: Sequence[tuple[bytes, bytes | None]], *, sync: bool = True) -> None:
                syncs.append(sync)
                write(batch, sync=sync)

            backend.write = recorded  # type: ignore[method-assign]
            await cluster.until("node 3 caught up", lambda: restarted.store.height() == behind)
            # One chunk of catchup_chunk_blocks (64) holds them all: one synced write.
            assert syncs == [False] * (behind - 1) + [True], f"seed {seed}: {syncs}"
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_gossiped_tx_is_admitted_at_once_and_only_a_proofs_wait_takes_a_task(
    tmp_path: Path,
) -> None:
    """Every tx reaches every node as gossip; a task per gossiped tx cost more than an
    attest's admission itself. An attest (no proof) is admitted before ``on_peer_tx``
    returns; an issue (outputs with a range proof) waits for the proof pool."""

    async def scenario() -> None:
        world = small_world()
        cluster = Cluster(tmp_path, world, MemoryNetwork(SEEDS[0]))
        for index in range(NODES):
            cluster.start(index)
        try:
            runtime = cluster.runtimes[2]
            attest = _attest(world, 1)
            tasks_before = len(asyncio.all_tasks())
            runtime.on_peer_tx(0, attest.encode())
            assert attest.tx_id in runtime.mempool
            assert runtime.tx_status(attest.tx_id) == Pending(attest.tx_id)
            assert len(asyncio.all_tasks()) == tasks_before
            issue = world.issue(world.bank_a, USD, [world.alice.plan(10)])
            runtime.on_peer_tx(0, issue.encode())
            assert issue.tx_id not in runtime.mempool
            await cluster.until("the issue admitted", lambda: issue.tx_id in runtime.mempool)
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_client_batch_is_admitted_in_order_without_a_task_per_tx(tmp_path: Path) -> None:
    """``POST /v1/txs:batch`` gathered a ``submit`` task per tx, each costing more than
    an attest's admission. ``submit_many`` admits in order with no task for a tx that
    needs no proof; an issue's range proof is waited for, and each tx keeps its own
    outcome (a bad one among good ones)."""

    async def scenario() -> None:
        world = small_world()
        cluster = Cluster(tmp_path, world, MemoryNetwork(SEEDS[0]))
        for index in range(NODES):
            cluster.start(index)
        try:
            runtime = cluster.runtimes[1]
            first, second = _attest(world, 1), _attest(world, 2)
            issue = world.issue(world.bank_a, USD, [world.alice.plan(10)])
            created: list[object] = []
            loop = asyncio.get_running_loop()

            def counting_factory(
                lp: asyncio.AbstractEventLoop, coro: Any, **kw: Any
            ) -> asyncio.Task[Any]:
                created.append(coro)
                return asyncio.Task(coro, loop=lp, **kw)

            loop.set_task_factory(counting_factory)
            outcomes = await runtime.submit_many(
                [first.encode(), b"garbage", issue.encode(), second.encode()]
            )
            loop.set_task_factory(None)
            assert outcomes[0] == Accepted(first.tx_id)
            assert isinstance(outcomes[1], Rejected) and outcomes[1].reason_code == "MALFORMED"
            assert outcomes[2:] == [Accepted(issue.tx_id), Accepted(second.tx_id)]
            # None of them admits a tx (as gather(submit ...) did): the cluster's other
            # work made the rest while this awaited the issue's proof.
            admitting = {"NodeRuntime.submit", "NodeRuntime._admit"}
            assert [c for c in created if getattr(c, "__qualname__", "") in admitting] == []
            admit = runtime.mempool.admit

            def buggy(tx_bytes: bytes, *args: Any, **kwargs: Any) -> Any:
                if tx_bytes == b"bug":
                    raise RuntimeError("a bug in admission")
                return admit(tx_bytes, *args, **kwargs)

            runtime.mempool.admit = buggy  # type: ignore[method-assign]
            third = _attest(world, 3)
            after_bug = await runtime.submit_many([b"bug", third.encode()])
            assert isinstance(after_bug[0], RuntimeError)  # that item's, not the batch's
            assert after_bug[1] == Accepted(third.tx_id)

            def everywhere(tx_id: bytes) -> bool:
                return all(
                    not isinstance(cluster.runtimes[i].tx_status(tx_id), Unknown)
                    for i in range(NODES)
                )

            for tx in (first, issue, second, third):  # gossiped, as submit gossips
                await cluster.until("gossiped", functools.partial(everywhere, tx.tx_id), 10)
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_gossip_chunk_is_admitted_in_order_with_its_signatures_checked_together(
    tmp_path: Path,
) -> None:
    """``on_peer_txs`` (the pump's chunk of a tx frame) admits what ``on_peer_tx``
    would, and the metrics show the chunk's signatures checked as one batch."""

    async def scenario() -> None:
        world = small_world()
        cluster = Cluster(tmp_path, world, MemoryNetwork(SEEDS[0]))
        runtime = cluster.start(2)
        try:
            attests = [_attest(world, nonce) for nonce in range(1, 21)]
            runtime.on_peer_txs(0, [a.encode() for a in attests])
            assert all(a.tx_id in runtime.mempool for a in attests)
            rendered = runtime.metrics.render().decode()
            assert "veil_signature_batch_size_count 1.0" in rendered
            assert "veil_signature_batch_size_sum 20.0" in rendered
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_an_idle_feeder_sleeps_until_the_mempool_accepts_a_tx(tmp_path: Path) -> None:
    """The feeder polled the mempool every 5 ms even with nothing to feed (4 % of a
    core on an idle node); it now waits for an accepted tx, which still reaches the
    core and commits on every node."""

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, SEEDS[0])
        try:
            takes = {index: 0 for index in range(NODES)}
            for index, runtime in cluster.runtimes.items():
                original = runtime.mempool.take_unfed

                def counting(max_txs: int, i: int = index, take: Any = original) -> Any:
                    takes[i] += 1
                    return take(max_txs)

                runtime.mempool.take_unfed = counting  # type: ignore[method-assign]
            await asyncio.sleep(0.3)
            assert takes == {index: 0 for index in range(NODES)}
            attest = _attest(cluster.world, 1)
            assert await cluster.runtimes[1].submit(attest.encode()) == Accepted(attest.tx_id)
            await cluster.until(
                "the attest committed everywhere",
                lambda: _committed_everywhere(cluster, attest.tx_id, list(range(NODES))),
            )
            assert all(count >= 1 for count in takes.values())
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_block_ordered_while_its_proof_is_in_the_pool_is_not_verified_again(
    tmp_path: Path,
) -> None:
    """Under load a backup is told to execute a block while its pool is still verifying
    the txs' proofs for admission; execution verified them again on the worker thread.
    It now waits for that pool batch and finds the proofs in the cache."""

    async def scenario() -> None:
        world = small_world()
        cluster = Cluster(tmp_path, world, MemoryNetwork(SEEDS[0]))
        # A short batch window, so node 2's pool starts before the others commit
        # (with the 40 ms default the block can come first and no pool call is made).
        cluster.settings = dataclasses.replace(cluster.settings, proof_batch_wait_ms=5)
        pool_batches: list[int] = []

        async def slow_pool(statements: Sequence[RangeStatement]) -> list[int]:
            pool_batches.append(len(statements))
            await asyncio.sleep(0.5)  # the others commit the block meanwhile
            return await inline_verifier(statements)

        for index in range(NODES):
            cluster.start(index, proof_verifier=slow_pool if index == 2 else inline_verifier)
        try:
            slow = cluster.runtimes[2]
            executed: list[int] = []
            inner = slow.proof_cache._batch_verifier

            def counted(statements: Sequence[RangeStatement]) -> list[int]:
                executed.append(len(statements))
                return inner(statements)

            slow.proof_cache._batch_verifier = counted
            issue = world.issue(world.bank_a, USD, [world.alice.plan(10)])
            assert await cluster.runtimes[0].submit(issue.encode()) == Accepted(issue.tx_id)
            await cluster.until(
                "the issue committed everywhere",
                lambda: _committed_everywhere(cluster, issue.tx_id, list(range(NODES))),
            )
            assert pool_batches == [1]
            assert executed == [], f"execution verified {executed} statements again"
            cluster.assert_same_chain(list(range(NODES)))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_restarted_runtime_fetches_the_next_chunk_while_it_applies_one(
    tmp_path: Path,
) -> None:
    """Start-up catch-up alternated: fetch and check a chunk, verify its proofs in the
    pool, execute it, and only then fetch the next, so the proof pool (another
    process) and the worker thread never ran at once. Now chunk k+1 is fetched,
    checked and its proofs verified while chunk k executes."""
    seed = SEEDS[0]

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, seed)
        try:
            restarted, behind = await _restart_behind(cluster, chunk_blocks=4)
            heights_at_fetch: dict[int, int] = {}
            _record_fetches(restarted, heights_at_fetch)
            await cluster.until("node 3 caught up", lambda: restarted.store.height() == behind)
            # The first fetch has nothing to overlap with; every later one has.
            later, overlapped = _overlapped_fetches(heights_at_fetch)
            assert later, f"seed {seed}: fetched {sorted(heights_at_fetch)}"
            assert overlapped == later, f"seed {seed}: heights at fetch {heights_at_fetch}"
            cluster.assert_same_chain(list(range(NODES)))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_restarted_runtime_fetches_each_missing_height_once(tmp_path: Path) -> None:
    """A restarted node's core asks for a state transfer to the stable checkpoint
    while the start-up catch-up is fetching the same heights; both fetched, checked
    and pre-verified the same blocks (node 3's CPU in a catch-up was 9.0 s where its
    phases take 5.5). The state transfer now waits for the start-up catch-up."""
    seed = SEEDS[0]

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, seed)
        try:
            restarted, behind = await _restart_behind(cluster, chunk_blocks=4)
            # Slow links: the core hears of the checkpoint while the start-up
            # catch-up is still fetching.
            fetched = _record_fetches(restarted, {}, delay_s=0.2)
            await cluster.until("node 3 caught up", lambda: restarted.store.height() == behind)
            twice = sorted(h for h in set(fetched) if fetched.count(h) > 1)
            assert twice == [], f"seed {seed}: heights fetched twice {twice}"
            cluster.assert_same_chain(list(range(NODES)))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_partitioned_runtime_fetches_the_next_chunk_while_it_applies_one(
    tmp_path: Path,
) -> None:
    """The core's state transfer alternated like the start-up catch-up once did: fetch
    a round of chunks, verify their proofs in the pool, execute them, only then fetch
    the next (a partitioned node took 72.6 s for 1,801 blocks). It now runs the
    start-up catch-up's pipeline: round k+1 is fetched, checked and verified while
    round k executes."""
    seed = SEEDS[0]

    async def scenario() -> None:
        # One chunk of 4 per round, so 12 blocks take three rounds.
        cluster = Cluster.started(tmp_path, seed, catchup_chunk_blocks=4, catchup_parallel=1)
        try:
            behind = await _partition_behind(cluster, 12)
            partitioned = cluster.runtimes[3]
            heights_at_fetch: dict[int, int] = {}
            _record_fetches(partitioned, heights_at_fetch)
            cluster.network.down.discard(3)
            await cluster.until(
                "node 3 caught up by state transfer",
                lambda: partitioned.store.height() == behind and partitioned.state_transfers > 0,
            )
            later, overlapped = _overlapped_fetches(heights_at_fetch)
            assert later, f"seed {seed}: fetched {sorted(heights_at_fetch)}"
            assert overlapped == later, f"seed {seed}: heights at fetch {heights_at_fetch}"
            cluster.assert_same_chain(list(range(NODES)))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_partitioned_runtime_applies_the_first_chunk_while_a_slow_peer_still_answers(
    tmp_path: Path,
) -> None:
    """The state transfer's round waited for every one of its parallel requests before
    it applied any block, so one slow peer held back the chunks the others had sent.
    Requests now stay in flight while the chunks that are there execute."""
    seed = SEEDS[0]

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, seed, catchup_chunk_blocks=4, catchup_parallel=3)
        try:
            behind = await _partition_behind(cluster, 12)
            partitioned = cluster.runtimes[3]
            store = partitioned.app.store  # the one the worker thread writes
            fetch = partitioned._fetch
            height_when_slow_answered: list[int] = []

            async def slow_for_5_to_8(request: FetchRequest) -> list[bytes] | str:
                reply = await fetch(request)
                if request.first_height == 5:
                    await asyncio.sleep(0.5)
                    height_when_slow_answered.append(store.height())
                return reply

            partitioned._fetch = slow_for_5_to_8  # type: ignore[method-assign]
            cluster.network.down.discard(3)
            await cluster.until(
                "node 3 caught up by state transfer",
                lambda: partitioned.store.height() == behind and partitioned.state_transfers > 0,
            )
            assert height_when_slow_answered, f"seed {seed}: heights 5-8 never asked"
            assert height_when_slow_answered[0] >= 4, f"seed {seed}: {height_when_slow_answered}"
            cluster.assert_same_chain(list(range(NODES)))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_partitioned_runtime_asks_a_mute_peer_once_and_catches_up_from_the_others(
    tmp_path: Path,
) -> None:
    """A connected peer that never answers a fetch (frozen, or byzantine and mute)
    stayed in the catch-up's round-robin: each range it was given waited out the
    fetch timeout and held back the blocks after it. It is now asked once; its
    range and the rest go to the peers that answer."""
    seed = SEEDS[0]
    timeout_s = 1.0

    async def scenario() -> None:
        cluster = Cluster.started(
            tmp_path,
            seed,
            catchup_chunk_blocks=2,
            catchup_parallel=3,
            catchup_fetch_timeout_s=timeout_s,
        )
        try:
            behind = await _partition_behind(cluster, 16)
            partitioned = cluster.runtimes[3]
            links = partitioned.links
            fetch_blocks = links.fetch_blocks
            asked_of_mute: list[int] = []
            never = asyncio.Event()

            async def peer_1_is_mute(
                peer: int, first_height: int, last_height: int, max_bytes: int
            ) -> list[bytes]:
                if peer == 1:
                    asked_of_mute.append(first_height)
                    await never.wait()
                return await fetch_blocks(peer, first_height, last_height, max_bytes)

            links.fetch_blocks = peer_1_is_mute  # type: ignore[method-assign]
            started_s = time.monotonic()
            cluster.network.down.discard(3)
            await cluster.until(
                "node 3 caught up by state transfer",
                lambda: partitioned.store.height() == behind and partitioned.state_transfers > 0,
            )
            took_s = time.monotonic() - started_s
            # In turn, peer 1 was asked 5 times (heights 3, 3, 11, 11 and the onward
            # 17), each a timeout: 5.05 s. Now once: 1.06 s (seed 11).
            assert len(asked_of_mute) == 1, f"seed {seed}: peer 1 asked for {asked_of_mute}"
            assert took_s < 4 * timeout_s, f"seed {seed}: {took_s:.2f} s"
            cluster.assert_same_chain(list(range(NODES)))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_partitioned_runtime_catches_up_past_the_checkpoint_to_the_tip_at_once(
    tmp_path: Path,
) -> None:
    """The core's state transfer stopped at the stable checkpoint it named; the blocks
    above it waited for the next checkpoint, which an idle network does not make
    (a snapshot's node 3 stayed at 640 of 655), and under load each checkpoint made
    while it caught up cost another round. It now goes on to the newest block its
    peers hold and tells the core it caught up there, once."""
    seed = SEEDS[0]

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, seed)
        try:
            # Checkpoints every 4 blocks: 14 blocks leave 2 above the stable one (12).
            behind = await _partition_behind(cluster, 14)
            partitioned = cluster.runtimes[3]
            completions: list[int] = []
            put = partitioned._events.put_nowait

            def recorded(event: Event) -> None:
                if isinstance(event, StateTransferCompleted):
                    completions.append(event.seq)
                put(event)

            partitioned._events.put_nowait = recorded  # type: ignore[method-assign,assignment]
            cluster.network.down.discard(3)
            await cluster.until(
                "node 3 at the others' tip", lambda: partitioned.store.height() == behind
            )
            await cluster.until("the core told", lambda: bool(completions))
            assert completions == [behind], f"seed {seed}: completed at {completions}"
            assert partitioned.state_transfers == 1, f"seed {seed}"
            # Told is queued; the core steps it on its own turn (a loaded CI saw 0).
            await cluster.until(
                "the core caught up", lambda: partitioned.replica.last_executed == behind
            )
            cluster.assert_same_chain(list(range(NODES)))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_full_proof_batch_goes_without_waiting_out_the_window(tmp_path: Path) -> None:
    """The batcher cuts at ``proof_batch_max`` admissions, not only at the window's
    end; a gossiped tx's admission (a callback on its proof's future, no task)
    finishes on every node."""

    async def scenario() -> None:
        world = small_world()
        cluster = Cluster(tmp_path, world, MemoryNetwork(SEEDS[0]))
        cluster.settings = dataclasses.replace(
            cluster.settings, proof_batch_max=2, proof_batch_wait_ms=600_000
        )
        batches: dict[int, list[int]] = {index: [] for index in range(NODES)}

        def pool_of(index: int) -> ProofVerifier:
            async def pool(statements: Sequence[RangeStatement]) -> list[int]:
                batches[index].append(len(statements))
                return await inline_verifier(statements)

            return pool

        for index in range(NODES):
            cluster.start(index, proof_verifier=pool_of(index))
        try:
            issues = [
                world.issue(world.bank_a, USD, [world.alice.plan(10)]),
                world.issue(world.bank_b, EUR, [world.carol.plan(20)]),
            ]
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(cluster.runtimes[0].submit(tx.encode()) for tx in issues)),
                timeout=30,
            )
            assert outcomes == [Accepted(tx.tx_id) for tx in issues]
            await cluster.until(
                "both issues committed everywhere",
                lambda: all(
                    _committed_everywhere(cluster, tx.tx_id, list(range(NODES))) for tx in issues
                ),
            )
            for index, runtime in cluster.runtimes.items():
                admitted = runtime.metrics.registry.get_sample_value("veil_txs_admitted_total")
                assert admitted == 2, f"node {index} admitted {admitted}"
                assert sum(batches[index]) == 2, f"node {index}: {batches[index]}"
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_metrics_read_the_mempool_live_and_count_rejections_without_a_tx_id(
    tmp_path: Path,
) -> None:
    """An audit of issue 9: the mempool gauges were set only after a block, so they
    froze while the chain stalled (here: one node, no quorum, no block ever), and a
    rejection of bytes that claim no tx id (garbage) was never counted."""

    async def scenario() -> None:
        cluster = Cluster(tmp_path, small_world(), MemoryNetwork(SEEDS[0]))
        lone = cluster.start(1)
        try:
            garbage = await lone.submit(b"\xc1 not a tx")
            assert isinstance(garbage, Rejected) and garbage.tx_id is None
            attest = _attest(cluster.world, 1)
            assert await lone.submit(attest.encode()) == Accepted(attest.tx_id)
            rendered = lone.metrics.render().decode()
            assert "veil_mempool_txs 1.0" in rendered
            assert f"veil_mempool_bytes {float(len(attest.encode()))}" in rendered
            assert f'veil_txs_rejected_total{{reason="{garbage.reason_code}"}} 1.0' in rendered
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_restarted_runtime_reports_the_view_it_restored(tmp_path: Path) -> None:
    """The view gauge was set only on a view change, so a node restarted after one
    reported view 0 until the next."""

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, SEEDS[0])
        everyone = [1, 2, 3]
        try:
            await cluster.crash(0)  # the primary of view 0
            attest = _attest(cluster.world, 1)
            assert await cluster.runtimes[1].submit(attest.encode()) == Accepted(attest.tx_id)
            await cluster.until(
                "committed in a later view",
                lambda: _committed_everywhere(cluster, attest.tx_id, everyone),
            )
            view = cluster.runtimes[2].replica.view
            assert view >= 1
            await cluster.crash(2)
            restarted = cluster.start(2)
            assert restarted.replica.view == view
            assert f"veil_view {float(view)}" in restarted.metrics.render().decode()
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_forged_copy_of_a_tx_does_not_settle_the_tx_as_rejected(tmp_path: Path) -> None:
    """The tx id covers kind and body, not the signature: a peer's copy with a forged
    signature was refused under the honest tx's id and settled as its final status,
    waking a waiter with BAD_SIGNATURE for a tx that then committed."""

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, SEEDS[0])
        try:
            honest = _attest(cluster.world, 1)
            forged = dataclasses.replace(honest.tx, signature=bytes(64)).encode()
            watcher = cluster.runtimes[2]
            waiting = asyncio.create_task(watcher.wait_for_commit(honest.tx_id, 20))
            await asyncio.sleep(0.05)
            watcher.on_peer_tx(0, forged)  # a byzantine peer races the honest gossip
            assert watcher.tx_status(honest.tx_id) == Unknown(honest.tx_id)
            assert await cluster.runtimes[1].submit(honest.encode()) == Accepted(honest.tx_id)
            await cluster.until(
                "the honest tx committed everywhere",
                lambda: _committed_everywhere(cluster, honest.tx_id, list(range(NODES))),
            )
            assert isinstance(await waiting, Committed)
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_gossip_refused_for_its_bytes_is_a_fault_and_is_not_verified_again(
    tmp_path: Path,
) -> None:
    """A validator gossips only txs it admitted, and a range proof's validity does not
    depend on the state: a peer's tx with a bad one proves the peer faulty. The same
    bytes sent again were verified in the pool each time, and nothing was counted."""

    async def scenario() -> None:
        world = small_world()
        cluster = Cluster(tmp_path, world, MemoryNetwork(SEEDS[0]))
        pool_statements: list[int] = []

        async def counting(statements: Sequence[RangeStatement]) -> list[int]:
            pool_statements.append(len(statements))
            return await inline_verifier(statements)

        for index in range(NODES):
            cluster.start(index, proof_verifier=counting if index == 2 else inline_verifier)
        try:
            plans = [world.alice.plan(10)]
            sealed = seal_outputs(plans, USD, world.auditor.memo_public)
            other = seal_outputs(plans, USD, world.auditor.memo_public)  # not its proof
            excess = -sum(o.blinding for o in sealed.openings) % group.ORDER
            body = IssueBody(world.bank_a.key, USD, 10, sealed.outputs, other.range_proof, 1)
            bad = sign_tx(world.bank_a.identity, body, world.chain_id, excess_blinding=excess)
            runtime = cluster.runtimes[2]
            runtime.on_peer_tx(0, bad.tx.encode())
            await cluster.until(
                "refused once", lambda: runtime.fault_counts.get(GOSSIP_FAULT) == 1, 10
            )
            verified = len(pool_statements)  # a failed batch may be checked again, split
            assert verified > 0
            for _ in range(3):  # a byzantine peer sends the same bytes again and again
                runtime.on_peer_tx(0, bad.tx.encode())
            runtime.on_peer_txs(0, [bad.tx.encode()])  # and in a frame's chunk
            assert runtime.fault_counts == {GOSSIP_FAULT: 5}  # refused by their hash at once
            # Each refusal also asks the transport to quarantine the sender.
            assert cluster.network.quarantined == [
                (2, 0, f"{GOSSIP_FAULT} BAD_RANGE_PROOF"),
                *[(2, 0, GOSSIP_FAULT)] * 4,
            ]
            await asyncio.sleep(0.1)
            assert len(pool_statements) == verified
            assert runtime.tx_status(bad.tx_id) == Unknown(bad.tx_id)  # no client asked
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_block_rejection_is_settled_when_the_rebuild_drops_nothing(tmp_path: Path) -> None:
    """The rebuild settles the blocks' rejections after it; a stray line there used the
    first loop's variable and raised whenever nothing was dropped (a chaos run's
    nodes all stopped at their first rejected request)."""

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, SEEDS[0])
        try:
            runtime = cluster.runtimes[0]
            tx_id = bytes(32)
            rejected = TxRejectedStatus(tx_id, "DOUBLE_SPEND", 3)
            runtime._executed_rejections = [(rejected, b"the rejected bytes")]
            runtime._rebuild_mempool()
            assert runtime.tx_status(tx_id) == rejected
            assert runtime._executed_rejections == []
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())
