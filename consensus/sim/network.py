"""The simulated network: per-message delay, drop, duplication, reordering, partitions.

Messages wait in one heap ordered by (delivery tick, send order), so a run is a
pure function of the seed.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from dataclasses import dataclass, field

from consensus.messages import Message


@dataclass(slots=True)
class NetworkConditions:
    max_delay_ticks: int = 1
    drop_probability: float = 0.0
    duplicate_probability: float = 0.0
    reorder_probability: float = 0.0
    reorder_extra_ticks: int = 0


@dataclass(slots=True)
class Network:
    rng: random.Random
    conditions: NetworkConditions = field(default_factory=NetworkConditions)
    blocked: set[tuple[int, int]] = field(default_factory=set)
    injected: Counter[str] = field(default_factory=Counter)
    _queue: list[tuple[int, int, int, int, Message]] = field(default_factory=list)
    _order: int = 0

    def send(self, now: int, src: int, dst: int, message: Message, extra_delay: int = 0) -> None:
        if (src, dst) in self.blocked:
            self.injected["partitioned_message"] += 1
            return
        c = self.conditions
        if c.drop_probability and self.rng.random() < c.drop_probability:
            self.injected["drop"] += 1
            return
        copies = 1
        if c.duplicate_probability and self.rng.random() < c.duplicate_probability:
            self.injected["duplicate"] += 1
            copies = 2
        for _ in range(copies):
            delay = self.rng.randint(1, c.max_delay_ticks)
            if delay > 1:
                self.injected["delay"] += 1
            delay += extra_delay
            if c.reorder_probability and self.rng.random() < c.reorder_probability:
                self.injected["reorder"] += 1
                delay += self.rng.randint(1, c.reorder_extra_ticks)
            self._order += 1
            heapq.heappush(self._queue, (now + delay, self._order, src, dst, message))

    def due(self, now: int) -> list[tuple[int, int, Message]]:
        ready: list[tuple[int, int, Message]] = []
        while self._queue and self._queue[0][0] <= now:
            _, _, src, dst, message = heapq.heappop(self._queue)
            ready.append((src, dst, message))
        return ready

    def partition(self, groups: list[set[int]], nodes: int) -> None:
        """Block every link between different groups (nodes in no group are isolated)."""
        group_of = {node: i for i, group in enumerate(groups) for node in group}
        self.blocked = {
            (a, b)
            for a in range(nodes)
            for b in range(nodes)
            if a != b and group_of.get(a, -1 - a) != group_of.get(b, -1 - b)
        }

    def block_one_way(self, src: int, dst: int) -> None:
        self.blocked.add((src, dst))

    def heal(self) -> None:
        self.blocked = set()
