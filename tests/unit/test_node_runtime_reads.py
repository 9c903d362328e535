"""Reads on the event loop while the worker thread commits: never a torn view.

The API, the mempool and ``tx_status`` read the chain on the loop while the
serial worker thread writes blocks. A reader coroutine samples node 0 (its
status, a member's account nonce, an owner's outputs and every tx's status)
between every step of the loop while the cluster commits well over a hundred
blocks. Each sample is one loop callback, so it must describe exactly one
committed block: checked against the final chain after the run.

Replay a failure with ``VEIL_NODE_SEED=<seed> pytest tests/unit/test_node_runtime_reads.py``.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from ledger.build import BuiltTx
from ledger.rules import last_nonce
from ledger.stored_block import stored_block_claim
from ledger.tx import split_output_id
from node.runtime import NodeRuntime
from node.services import Committed
from tests.node_net import MemoryNetwork
from tests.spec.ledger_world import USD
from tests.unit.test_node_runtime import NODES, Cluster, _attest, small_world

SEED = int(os.environ.get("VEIL_NODE_SEED", "21"))
ATTESTS = 120
ISSUES = 6


@dataclass(frozen=True, slots=True)
class Sample:
    height: int
    state_root: bytes
    block_root: bytes
    """The state root the block at ``height`` fixes, read in the same callback."""
    nonce: int
    outputs: int
    committed: tuple[tuple[bytes, int, bytes], ...]
    """(tx id, height, block hash) of every tx ``tx_status`` called committed."""


def sample(
    runtime: NodeRuntime, chain_id: bytes, member: bytes, owner: bytes, tx_ids: list[bytes]
) -> Sample:
    """One synchronous read of everything, as an API handler reads."""
    status = runtime.status()
    store = runtime.store
    claim = stored_block_claim(status.height, store.block_at(status.height) or b"", chain_id)
    outputs = store.outputs_by_owner(owner)
    for output_id in outputs:  # what GET /v1/outputs does for each id
        location = store.tx_location(split_output_id(output_id)[0])
        if location is None or store.block_at(location.height) is None:
            raise AssertionError(f"output {output_id.hex()} without its block")
    committed = []
    for tx_id in tx_ids:
        tx_status = runtime.tx_status(tx_id)
        if isinstance(tx_status, Committed):
            committed.append((tx_id, tx_status.height, tx_status.block_hash))
    return Sample(
        status.height,
        status.state_root,
        claim.state_root,
        last_nonce(store, member),
        len(outputs),
        tuple(committed),
    )


def test_reads_on_the_loop_see_one_block_while_the_worker_commits(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = small_world()
        issues = [world.issue(world.bank_a, USD, [world.alice.plan(i + 1)]) for i in range(ISSUES)]
        attests = [_attest(world, n) for n in range(1, ATTESTS + 1)]
        txs: list[BuiltTx] = [*attests, *issues]
        tx_ids = [t.tx_id for t in txs]
        cluster = Cluster(tmp_path, world, MemoryNetwork(SEED, max_delay_ms=1.0))
        for index in range(NODES):
            cluster.start(index)
        node = cluster.runtimes[0]
        member, owner = world.bank_b.key, world.alice.key
        outputs_at_start = len(node.store.outputs_by_owner(owner))
        samples: list[Sample] = []
        errors: list[BaseException] = []
        submitting = True

        async def reader() -> None:
            while submitting:
                try:
                    samples.append(sample(node, world.chain_id, member, owner, tx_ids))
                except Exception as exc:
                    errors.append(exc)
                await asyncio.sleep(0)

        reading = asyncio.get_running_loop().create_task(reader())
        try:
            # One signer's nonces in order: each attest after the previous one committed.
            for index, attest in enumerate(attests):
                await node.submit(attest.encode())
                if index % (ATTESTS // ISSUES) == 0 and index // (ATTESTS // ISSUES) < ISSUES:
                    await node.submit(issues[index // (ATTESTS // ISSUES)].encode())
                await node.wait_for_commit(attest.tx_id, 30)
            await cluster.until(
                "every tx committed on node 0",
                lambda: all(isinstance(node.tx_status(t), Committed) for t in tx_ids),
            )
            submitting = False
            await reading
            final = node.store
            final_height = final.height()
            location_of = {t.tx_id: final.tx_location(t.tx_id) for t in txs}
            hash_at = [final.block_hash_at(h) for h in range(final_height + 1)]
        finally:
            submitting = False
            await reading
            await cluster.stop_all()
        assert errors == [], f"seed {SEED}: {errors[:3]}"
        assert final_height > 100, f"seed {SEED}: only {final_height} blocks"
        height_of = {}
        for tx_id, location in location_of.items():
            assert location is not None, f"seed {SEED}"
            height_of[tx_id] = location.height
        nonce_at = [0] * (final_height + 1)  # the member's nonce after each block
        for nonce, attest in enumerate(attests, start=1):
            for h in range(height_of[attest.tx_id], final_height + 1):
                nonce_at[h] = max(nonce_at[h], nonce)
        outputs_at = [outputs_at_start] * (final_height + 1)
        for issue in issues:
            for h in range(height_of[issue.tx_id], final_height + 1):
                outputs_at[h] += 1
        torn = [
            s
            for s in samples
            if s.state_root != s.block_root
            or s.nonce != nonce_at[s.height]
            or s.outputs != outputs_at[s.height]
            or any(h > s.height or hash_at[h] != b for _, h, b in s.committed)
        ]
        assert len(samples) > 1_000, f"seed {SEED}: only {len(samples)} samples"
        assert torn == [], f"seed {SEED}: {len(torn)} torn samples, first {torn[0]}"

    asyncio.run(scenario())
