"""A seeded in-memory peer network for runtime tests: N runtimes in one event loop.

Every consensus message goes through ``consensus.wire`` both ways (as on a
socket), and is delayed, reordered and dropped by one ``random.Random(seed)``;
tx gossip and block fetches are delayed the same way. ``down`` nodes neither
send nor receive (a crash or a partition). Print ``seed`` on failure to replay.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from consensus.messages import Message
from consensus.wire import decode_message, encode_message
from node.runtime import NodeRuntime


class MemoryNetwork:
    def __init__(self, seed: int, *, drop_rate: float = 0.0, max_delay_ms: float = 3.0) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.drop_rate = drop_rate
        self.max_delay_ms = max_delay_ms
        self.nodes: dict[int, NodeRuntime] = {}
        self.down: set[int] = set()
        self.dropped = 0
        self.fetches: list[tuple[int, int, int, int]] = []
        self.quarantined: list[tuple[int, int, str]] = []
        """(by, whom, why) for every quarantine a runtime asked for."""
        # Gossip keeps each link's order (as one TCP stream does): a sender's txs
        # with nonces n, n+1 must not overtake each other. Consensus messages may.
        self._gossip_due_s: dict[tuple[int, int], float] = {}

    def links(self, index: int, count: int) -> MemoryLinks:
        return MemoryLinks(self, index, count)

    def _later(self, call: Callable[[], None]) -> None:
        delay_s = self.rng.uniform(0, self.max_delay_ms) / 1000
        asyncio.get_running_loop().call_later(delay_s, call)

    def deliver(self, sender: int, to: int, message: Message) -> None:
        if sender in self.down or to in self.down:
            return
        if self.rng.random() < self.drop_rate:
            self.dropped += 1
            return
        data = encode_message(message)

        def arrive() -> None:
            node = self.nodes.get(to)
            if node is not None and to not in self.down:
                node.on_peer_message(sender, decode_message(data))

        self._later(arrive)

    def gossip(self, sender: int, to: int, tx_bytes: bytes) -> None:
        if sender in self.down or to in self.down:
            return

        def arrive() -> None:
            node = self.nodes.get(to)
            if node is not None and to not in self.down:
                node.on_peer_tx(sender, tx_bytes)

        loop = asyncio.get_running_loop()
        due_s = loop.time() + self.rng.uniform(0, self.max_delay_ms) / 1000
        due_s = max(due_s, self._gossip_due_s.get((sender, to), 0.0))
        self._gossip_due_s[(sender, to)] = due_s
        loop.call_at(due_s, arrive)


class MemoryLinks:
    def __init__(self, network: MemoryNetwork, index: int, count: int) -> None:
        self.network = network
        self.index = index
        self.count = count

    def send(self, to: int, message: Message) -> None:
        self.network.deliver(self.index, to, message)

    def broadcast(self, message: Message) -> None:
        for to in range(self.count):
            if to != self.index:
                self.network.deliver(self.index, to, message)

    def gossip_tx(self, tx_bytes: bytes) -> None:
        for to in range(self.count):
            if to != self.index:
                self.network.gossip(self.index, to, tx_bytes)

    def connected(self, peer: int) -> bool:
        return peer not in self.network.down and self.index not in self.network.down

    def quarantine(self, peer: int, reason: str) -> None:
        self.network.quarantined.append((self.index, peer, reason))

    async def fetch_blocks(
        self, peer: int, first_height: int, last_height: int, max_bytes: int
    ) -> list[bytes]:
        network = self.network
        node = network.nodes.get(peer)
        if node is None or peer in network.down or self.index in network.down:
            raise ConnectionError(f"peer {peer} is unreachable")
        await asyncio.sleep(network.rng.uniform(0, network.max_delay_ms) / 1000)
        if peer in network.down or self.index in network.down:  # it went down meanwhile
            raise ConnectionError(f"peer {peer} is unreachable")
        network.fetches.append((self.index, peer, first_height, last_height))
        return await node.blocks_for(first_height, last_height, max_bytes)
