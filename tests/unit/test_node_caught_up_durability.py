"""The core must hear of no caught-up block before it is durable (node/runtime.py
``_apply``'s docstring, docs/storage.md "the runtime syncs them before the consensus
core hears of any block").

The idle tip probe (``_fetch_onward``) applies a fetched chunk block by block with
``sync=False`` (only the chunk's last block is synced), awaiting the worker between
blocks. The core's state transfer (``_catch_up``, started by ``_carry_out`` on a
``RequestStateTransfer`` whether or not a probe is running) then takes the
``request.seq <= committed height`` shortcut and ``_announce_caught_up`` reads
``self._committed``, which already holds the probe's unsynced blocks: the core was
told ``StateTransferCompleted`` at a height a power loss would lose. The announcement
now syncs the fetched blocks first, on the worker, in the job that reads the view.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

from consensus.actions import RequestStateTransfer
from consensus.events import StateTransferCompleted
from ledger.chain import open_chain
from ledger.leveldb_store import LevelDBStore
from ledger.stored_block import stored_block_claim
from node.proof_pool import inline_verifier
from node.runtime import Fetched, NodeRuntime
from node.serial_worker import SerialWorker
from node.wal import WriteAheadLog
from tests.node_net import MemoryNetwork
from tests.spec.ledger_world import World
from tests.unit.test_node_runtime import Cluster, _attest, small_world


def world_checkpoint_8() -> World:
    world = small_world()
    params = dataclasses.replace(
        world.genesis.params, checkpoint_interval_blocks=8, watermark_window_blocks=16
    )
    world.genesis = dataclasses.replace(world.genesis, params=params)
    world.chain_id = world.genesis.chain_id
    return world


def test_state_transfer_reports_no_unsynced_caught_up_block(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = Cluster(tmp_path, world_checkpoint_8(), MemoryNetwork(11))
        cluster.network.down.add(3)
        for index in range(3):
            cluster.start(index)
        closers: list[Any] = []
        try:
            txs = [_attest(cluster.world, n) for n in range(1, 15)]
            top = await cluster.commit_one_per_block(txs)
            source = cluster.runtimes[0]
            await cluster.until(
                "a stable checkpoint below the tip",
                lambda: 0 < source.replica.stable_seq < top,
            )
            stable_seq, stable_root = source.replica.stable_seq, source.replica.stable_root

            # Node 3: a running node's state (not stepped here: we drive two of its tasks).
            (tmp_path / "n3").mkdir()
            store = LevelDBStore(tmp_path / "n3" / "chain", block_claims=stored_block_claim)
            open_chain(store, cluster.world.genesis)
            wal = WriteAheadLog(tmp_path / "n3" / "wal")
            worker = SerialWorker()
            closers += [worker.close, wal.close, store.close]
            rt = NodeRuntime(
                genesis=cluster.world.genesis,
                identity=cluster.identities[3],
                store=store,
                wal=wal,
                links=cluster.network.links(3, 4),
                proof_verifier=inline_verifier,
                wall_clock_ms=lambda: int(time.time() * 1000),
                settings=cluster.settings,
                worker=worker,
            )
            rt._startup_catchup_over.set()
            cluster.network.down.discard(3)

            # Durability oracle: the highest height a synced write has covered.
            durable = {"written": 0, "synced": 0}
            commit_block, sync = store.commit_block, store.sync

            def tracked_commit(write: Any, *, sync: bool = True) -> bytes:
                root = commit_block(write, sync=sync)
                durable["written"] = write.height
                if sync:
                    durable["synced"] = write.height
                return root

            def tracked_sync() -> None:
                sync()
                durable["synced"] = durable["written"]

            store.commit_block = tracked_commit  # type: ignore[method-assign]
            store.sync = tracked_sync  # type: ignore[method-assign]

            told: list[tuple[int, int]] = []
            put = rt._events.put_nowait

            def recorded_put(event: Any) -> None:
                if isinstance(event, StateTransferCompleted):
                    told.append((event.seq, durable["synced"]))
                put(event)

            rt._events.put_nowait = recorded_put  # type: ignore[method-assign,assignment]

            # The core's RequestStateTransfer for the stable checkpoint is carried out
            # (``_carry_out`` starts ``_catch_up``; it does not look at the probe) while
            # the idle probe is between two blocks of its chunk. Nothing is forced after
            # that: the two tasks interleave as the event loop runs them.
            apply_fetched = rt._apply_fetched
            started: list[asyncio.Task[None]] = []

            async def probe_apply(block: Any, *, sync: bool) -> Fetched:
                fetched = await apply_fetched(block, sync=sync)
                if not started and not sync and rt.store.height() > stable_seq:
                    request = RequestStateTransfer(stable_seq, stable_root, (0, 1, 2))
                    started.append(asyncio.get_running_loop().create_task(rt._catch_up(request)))
                    # not awaited: the two tasks interleave as the event loop runs them
                return fetched

            rt._apply_fetched = probe_apply  # type: ignore[method-assign]
            await asyncio.wait_for(rt._fetch_onward("while idle"), 30)
            await asyncio.wait_for(asyncio.gather(*started), 30)
            # The probe's chunk passed the stable checkpoint unsynced, so the race ran.
            assert started, f"top {top} stable {stable_seq} height {rt.store.height()}"
            assert rt.store.height() == top
            bad = [(seq, synced) for seq, synced in told if seq > synced]
            assert told and not bad, f"StateTransferCompleted(seq), synced height: {bad}"
        finally:
            await cluster.stop_all()
            for close in closers:
                close()

    asyncio.run(scenario())
