"""The primary's batch cut (``batch_cut_ms``, the core's ``batch_cut_ticks``): a
batch short of a full block leaves once its oldest tx waited the cut; a full one
at once; backups feed their cores at once. Deterministic runtime tests over the
seeded in-memory network (tests/unit/test_node_runtime.py); the core's rule
itself is tests/unit/test_consensus_batch_cut.py."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

from node.config import DEFAULT_BATCH_CUT_MS
from node.runtime import RuntimeSettings
from node.services import Accepted, Committed
from node.settings import SettingsError, parse_node_settings
from tests.node_net import MemoryNetwork
from tests.unit.test_node_runtime import NODES, SEEDS, Cluster, _attest, small_world
from tests.unit.test_node_settings import BASE, _written


def _small_blocks_cluster(tmp_path: Path, *, max_block_txs: int, batch_cut_ms: int) -> Cluster:
    world = small_world()
    params = dataclasses.replace(world.genesis.params, max_block_txs=max_block_txs)
    world.genesis = dataclasses.replace(world.genesis, params=params)
    world.chain_id = world.genesis.chain_id
    cluster = Cluster(tmp_path, world, MemoryNetwork(SEEDS[0]))
    cluster.settings = dataclasses.replace(cluster.settings, tick_ms=100, batch_cut_ms=batch_cut_ms)
    for index in range(NODES):
        cluster.start(index)
    return cluster


def test_the_primary_gathers_txs_that_arrive_within_its_cut_into_one_block(
    tmp_path: Path,
) -> None:
    """Ten attests sent 10 ms apart to the primary (node 0 in view 0) make one block
    with a 500 ms cut (without it, a block every few ms). Ticks of 100 ms as in
    production."""

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, SEEDS[0], tick_ms=100, batch_cut_ms=500)
        try:
            primary = cluster.runtimes[0]
            attests = [_attest(cluster.world, nonce) for nonce in range(1, 11)]
            for attest in attests:
                assert await primary.submit(attest.encode()) == Accepted(attest.tx_id)
                await asyncio.sleep(0.01)
            assert primary.store.height() == 0
            statuses = [await primary.wait_for_commit(a.tx_id, 30) for a in attests]
            assert all(isinstance(s, Committed) for s in statuses)
            assert {s.height for s in statuses if isinstance(s, Committed)} == {1}
            await cluster.until_one_height()
            cluster.assert_same_chain(list(range(NODES)))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_backup_feeds_its_core_at_once_while_the_primary_holds_a_lone_tx(
    tmp_path: Path,
) -> None:
    """With a 1.5 s cut, an attest sent to a backup is in the backup's core within a
    few ms (its censorship timer runs from then) while the primary proposes nothing;
    it commits once the primary's cut has passed, not before."""

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, SEEDS[0], tick_ms=100, batch_cut_ms=1_500)
        try:
            primary, backup = cluster.runtimes[0], cluster.runtimes[1]
            attest = _attest(cluster.world, 1)
            started = time.monotonic()
            assert await backup.submit(attest.encode()) == Accepted(attest.tx_id)
            await cluster.until(
                "the backup's core holds it", lambda: len(backup.replica.pending) == 1, 0.9
            )
            assert primary.store.height() == 0
            status = await backup.wait_for_commit(attest.tx_id, 20)
            assert isinstance(status, Committed) and status.height == 1
            assert 1.3 <= time.monotonic() - started < 20
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_full_block_is_proposed_without_waiting_for_the_cut(tmp_path: Path) -> None:
    """With blocks of at most 8 txs and a 30 s cut, 8 attests commit in one block
    before any backup could relay them (a retransmission interval, 1 s): a count
    cut, not a time cut."""

    async def scenario() -> None:
        cluster = _small_blocks_cluster(tmp_path, max_block_txs=8, batch_cut_ms=30_000)
        try:
            primary = cluster.runtimes[0]
            attests = [_attest(cluster.world, nonce) for nonce in range(1, 9)]
            started = time.monotonic()
            outcomes = await primary.submit_many([a.encode() for a in attests])
            assert outcomes == [Accepted(a.tx_id) for a in attests]
            statuses = [await primary.wait_for_commit(a.tx_id, 20) for a in attests]
            assert time.monotonic() - started < 0.9
            assert {s.height for s in statuses if isinstance(s, Committed)} == {1}
            assert len(statuses) == 8 and all(isinstance(s, Committed) for s in statuses)
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_batch_cut_ms_defaults_to_100_reaches_the_runtime_and_may_be_0() -> None:
    text = _written()
    assert "batch_cut_ms = 100" in text
    assert parse_node_settings(text, BASE).node.batch_cut_ms == 100 == DEFAULT_BATCH_CUT_MS
    assert RuntimeSettings().batch_cut_ms == DEFAULT_BATCH_CUT_MS
    off = parse_node_settings(text.replace("batch_cut_ms = 100", "batch_cut_ms = 0"), BASE)
    assert off.node.batch_cut_ms == 0
    with pytest.raises(SettingsError, match=r"\[node\] batch_cut_ms must be 0 or more"):
        parse_node_settings(text.replace("batch_cut_ms = 100", "batch_cut_ms = -5"), BASE)
