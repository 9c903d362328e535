"""After a catch-up, the runtime reads the store to tell the core where it stands
(``_announce_caught_up``: the root and the request ids of the last window of
blocks, hundreds of them decoded) and to check the stable checkpoint's root
(``_checkpoint_root_holds``). Both ran on the event loop; they run on the worker
thread, and what they report is unchanged."""

from __future__ import annotations

import asyncio
from pathlib import Path

from consensus.events import StateTransferCompleted
from ledger.block import decode_block
from node.runtime import RuntimeSettings, recent_request_ids
from tests.spec.ledger_world import World
from tests.unit.test_node_block_serving import runtime_on_a_chain


def test_announcing_a_catch_up_and_checking_a_checkpoint_read_on_the_worker_thread(
    tmp_path: Path,
) -> None:
    world = World()
    with runtime_on_a_chain(tmp_path, world, 5, RuntimeSettings()) as (runtime, reads):
        store = runtime.store
        root_3 = decode_block(store.block_at(3) or b"").header.state_root
        root_5 = decode_block(store.block_at(5) or b"").header.state_root
        window = runtime.config.request_id_window_heights
        ids = recent_request_ids(store, world.chain_id, window)
        reads.heights.clear()
        reads.threads.clear()

        async def scenario() -> object:
            assert await runtime._checkpoint_root_holds(3, root_3)
            await runtime._announce_caught_up()
            announced = runtime._events.get_nowait()
            assert not runtime.stopped
            assert not await runtime._checkpoint_root_holds(3, bytes(32))
            return announced

        announced = asyncio.run(scenario())
    assert announced == StateTransferCompleted(5, root_5, ids)
    assert reads.heights and reads.threads == {"veil-worker"}
    assert (
        runtime.stop_reason == "state root at 3 after catch-up differs from the stable checkpoint"
    )
