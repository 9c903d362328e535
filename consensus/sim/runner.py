"""Run one seed: real replicas, one RNG, a faulty network, then heal and check liveness."""

from __future__ import annotations

import random
import sys
from collections import Counter
from dataclasses import dataclass, field

from consensus.actions import (
    Action,
    Broadcast,
    Diverged,
    Execute,
    Persist,
    ReportFault,
    RequestStateTransfer,
    Send,
)
from consensus.config import ReplicaConfig
from consensus.events import (
    Event,
    Executed,
    MessageReceived,
    RequestSubmitted,
    StateTransferCompleted,
    Tick,
)
from consensus.messages import Message, Request
from consensus.replica import Replica
from consensus.sim.app import SimApp
from consensus.sim.byzantine import ByzantineReplica
from consensus.sim.checks import SafetyChecker
from consensus.sim.keys import SIGNATURE_BYTES, public_key, signer, verify
from consensus.sim.network import Network, NetworkConditions
from consensus.sim.scenario import Scenario, TimedFault
from consensus.sim.storage import SimStorage

CHAIN_ID = b"veil-sim"
LIVENESS_BOUND_TICKS = 4000
CLIENT_RETRY_TICKS = 50
TICK_MS = 100
"""Simulated milliseconds per tick: replicas see ``Tick(now_ms = tick * TICK_MS)``."""


def sim_config(replica_id: int, nodes: int) -> ReplicaConfig:
    """Small checkpoint interval and window so every run crosses GC and watermarks."""
    return ReplicaConfig(
        chain_id=CHAIN_ID,
        validators=tuple(public_key(i) for i in range(nodes)),
        replica_id=replica_id,
        checkpoint_interval=4,
        watermark_window=8,
        view_change_timeout_ticks=30,
        max_view_change_timeout_ticks=240,
        view_bound=64,
        retransmit_interval_ticks=8,
        max_batch_size=8,
        signature_bytes=SIGNATURE_BYTES,
        request_id_window_heights=16,
    )


@dataclass(slots=True)
class SeedResult:
    seed: int
    kinds: frozenset[str]
    safety_violations: list[str]
    liveness_failure: str | None
    commits: int
    view_changes: int
    faults_injected: Counter[str]
    ticks: int
    replica_faults: Counter[str] = field(default_factory=Counter)


class Simulation:
    def __init__(self, scenario: Scenario, trace: bool = False) -> None:
        self.scenario = scenario
        self.trace = trace
        n = scenario.nodes
        self.n = n
        self.rng = random.Random(scenario.seed)
        self.now = 0
        self.configs = [sim_config(i, n) for i in range(n)]
        self.signers = [signer(i) for i in range(n)]
        self.replicas: list[Replica | None] = [
            Replica(self.configs[i], self.signers[i], verify) for i in range(n)
        ]
        self.apps = [SimApp() for _ in range(n)]
        self.storage = [SimStorage() for _ in range(n)]
        self.network = Network(self.rng, self._conditions(scenario, healed=False))
        self.checker = SafetyChecker(CHAIN_ID, n)
        self.injected: Counter[str] = Counter()
        self.replica_faults: Counter[str] = Counter()
        self.crash_mid_step: set[int] = set()
        self.transfers: dict[int, int] = {}
        self._pending_transfers: list[tuple[int, int, int, bytes, tuple[int, ...]]] = []
        self.honest = set(scenario.honest)
        self.byzantines = {
            index: ByzantineReplica(
                me=index,
                nodes=n,
                kinds=scenario.kinds,
                rng=random.Random(
                    f"byzantine/{scenario.seed}"
                    if index == scenario.byzantine[0]
                    else f"byzantine/{scenario.seed}/{index}"
                ),
                sign=self.signers[index],
                chain_id=CHAIN_ID,
                # Just under the timeout: the request usually commits in time, so
                # backups must not give up on a primary that is merely slow.
                slow_delay_ticks=self.configs[0].view_change_timeout_ticks - 6,
            )
            for index in scenario.byzantine
        }
        self.requests = [
            Request(b"client%d-req%d" % (i % 3, i), b"payload-%d" % i)
            for i in range(scenario.requests)
        ]
        self.submit_at: dict[int, list[Request]] = {}
        for request in self.requests:
            tick = self.rng.randrange(0, scenario.fault_ticks - 20)
            self.submit_at.setdefault(tick, []).append(request)

    @staticmethod
    def _conditions(scenario: Scenario, healed: bool) -> NetworkConditions:
        kinds = scenario.kinds
        if healed:
            return NetworkConditions(max_delay_ticks=2)
        return NetworkConditions(
            max_delay_ticks=6 if "delay" in kinds else 1,
            drop_probability=0.1 if "drop" in kinds else 0.0,
            duplicate_probability=0.1 if "duplicate" in kinds else 0.0,
            reorder_probability=0.2 if "reorder" in kinds else 0.0,
            reorder_extra_ticks=12,
        )

    def log(self, text: str) -> None:
        if self.trace:
            print(f"[{self.now:5d}] {text}", file=sys.stderr)

    # --- driving replicas ---------------------------------------------------

    def deliver(self, index: int, event: Event) -> None:
        queue: list[Event] = [event]
        while queue:
            replica = self.replicas[index]
            if replica is None:
                return
            current = queue.pop(0)
            actions = replica.step(current)
            if self.trace and (actions or not isinstance(current, Tick)):
                self.log(f"r{index} <- {_short(current)} -> {[_short(a) for a in actions]}")
            self.carry_out(index, actions, queue)

    def carry_out(self, index: int, actions: list[Action], queue: list[Event]) -> None:
        storage = self.storage[index]
        for action in actions:
            match action:
                case Persist(records=records):
                    storage.write(records)
                    if index in self.crash_mid_step:
                        # Crash after the write, before the sync that precedes the send.
                        self.crash_mid_step.discard(index)
                        self.injected["crash_lose_unsynced"] += 1
                        self.crash(index)
                        return
                case Send(to=to, message=message):
                    storage.sync()
                    self.send(index, message, [to])
                case Broadcast(message=message):
                    storage.sync()
                    self.send(index, message, [i for i in range(self.n) if i != index])
                case Execute(seq=seq, batch=batch, metadata=metadata, certificate=cert):
                    storage.sync()
                    app = self.apps[index]
                    root = app.execute(seq, cert.digest, batch, metadata)
                    if index in self.honest:
                        self.checker.executed(index, seq, cert.digest, root, cert)
                    queue.append(Executed(seq, root))
                case RequestStateTransfer(seq=seq, state_root=root, peers=peers):
                    self.request_transfer(index, seq, root, peers)
                case ReportFault(kind=kind):
                    self.replica_faults[kind] += 1
                case Diverged():
                    if index in self.honest:
                        self.checker.violations.append(f"replica {index} diverged: {action}")
        if self.rng.random() < 0.5:
            storage.sync()  # the OS flushes on its own schedule too

    def send(self, index: int, message: Message, destinations: list[int]) -> None:
        byzantine = self.byzantines.get(index)
        if byzantine is not None:
            for dst, sent, delay in byzantine.outgoing(message, destinations):
                self.network.send(self.now, index, dst, sent, delay)
            return
        if message.sender == index:
            self.checker.signed_by_honest(message)
        for dst in destinations:
            self.network.send(self.now, index, dst, message)

    # --- crashes and state transfer -------------------------------------------

    def crash(self, index: int) -> None:
        if self.replicas[index] is None:
            return
        self.log(f"r{index} CRASH (unsynced records lost: {len(self.storage[index].unsynced)})")
        self.replicas[index] = None
        self.storage[index].crash()
        self.transfers.pop(index, None)

    def restart(self, index: int) -> None:
        if self.replicas[index] is not None:
            return
        app = self.apps[index]
        self.replicas[index] = Replica.restore(
            self.configs[index],
            self.signers[index],
            verify,
            records=self.storage[index].durable,
            executed_seq=app.height,
            state_root=app.root,
            committed_request_ids=app.recent_ids(self.configs[index].request_id_window_heights),
        )
        self.log(f"r{index} RESTART at height {app.height}")

    def request_transfer(self, index: int, seq: int, root: bytes, peers: tuple[int, ...]) -> None:
        if index in self.transfers or seq <= self.apps[index].height:
            return
        self.transfers[index] = seq
        self.injected["state_transfer"] += 1
        self._pending_transfers.append(
            (self.now + self.rng.randint(2, 10), index, seq, root, peers)
        )

    def finish_transfers(self) -> None:
        still: list[tuple[int, int, int, bytes, tuple[int, ...]]] = []
        for item in self._pending_transfers:
            at, index, seq, root, peers = item
            if at > self.now:
                still.append(item)
                continue
            if self.transfers.get(index) != seq:
                continue
            del self.transfers[index]
            app = self.apps[index]
            for peer in peers:
                source = self.apps[peer]
                if (
                    self.replicas[peer] is not None
                    and source.height >= seq
                    and source.roots[seq] == root
                    and seq > app.height
                ):
                    app.copy_prefix_from(source, seq)
                    if index in self.honest:
                        for height in range(1, seq + 1):
                            self.checker.state_root(index, height, app.roots[height])
                    ids = app.recent_ids(self.configs[index].request_id_window_heights)
                    self.deliver(index, StateTransferCompleted(seq, root, ids))
                    break
        self._pending_transfers = still

    # --- timed faults ---------------------------------------------------------

    def current_primary(self) -> int:
        views = [r.view for r in self.replicas if r is not None]
        return max(views, default=0) % self.n

    def apply_timed(self, fault: TimedFault) -> None:
        net = self.network
        if self.now == fault.start_tick:
            if fault.kind != "crash_lose_unsynced":  # counted when the crash happens
                self.injected[fault.kind] += 1
            target = fault.target
            match fault.kind:
                case "partition_symmetric" | "lagging_replica":
                    net.partition([set(range(self.n)) - {target}], self.n)
                case "isolate_primary":
                    primary = self.current_primary()
                    net.partition([set(range(self.n)) - {primary}], self.n)
                case "partition_asymmetric":
                    for other in range(self.n):
                        if other != target:
                            if self.rng.random() < 0.5:
                                net.block_one_way(target, other)
                            else:
                                net.block_one_way(other, target)
                case "split_2_2":
                    order = list(range(self.n))
                    self.rng.shuffle(order)
                    half = self.n // 2
                    net.partition([set(order[:half]), set(order[half:])], self.n)
                case "crash_restart":
                    self.crash(target)
                case "crash_lose_unsynced":
                    self.crash_mid_step.add(target)
            self.log(f"FAULT {fault.kind} starts (target r{target})")
        elif self.now == fault.end_tick:
            self.heal_fault(fault)

    def heal_fault(self, fault: TimedFault) -> None:
        if fault.kind in ("crash_restart", "crash_lose_unsynced"):
            self.crash_mid_step.discard(fault.target)
            self.restart(fault.target)
        else:
            self.network.heal()
        self.log(f"FAULT {fault.kind} healed")

    # --- the run --------------------------------------------------------------

    def submit(self, request: Request) -> None:
        for i in range(self.n):
            if self.replicas[i] is not None:
                self.deliver(i, RequestSubmitted(request))

    def executed_anywhere(self, request: Request) -> bool:
        return any(request.request_id in self.apps[i].executed_ids for i in self.honest)

    def liveness_problem(self) -> str | None:
        honest = sorted(self.honest)
        if any(self.replicas[i] is None for i in honest):
            return "an honest replica is down"
        heights = {i: self.apps[i].height for i in honest}
        if len(set(heights.values())) != 1:
            return f"heights differ: {heights}"
        for request in self.requests:
            for i in honest:
                if request.request_id not in self.apps[i].executed_ids:
                    return f"request {request.request_id!r} not executed by r{i}"
        for i in honest:
            # Exactly once: the core must not even order a committed request again.
            if self.apps[i].duplicates_skipped:
                return f"r{i} was handed {self.apps[i].duplicates_skipped} repeated requests"
        return None

    def run(self) -> SeedResult:
        scenario = self.scenario
        deadline = scenario.fault_ticks + LIVENESS_BOUND_TICKS
        liveness: str | None = "not checked"
        while self.now < deadline and not self.checker.violations:
            self.now += 1
            for fault in scenario.timed:
                self.apply_timed(fault)
            if self.now == scenario.fault_ticks:
                self.heal_all()
            for request in self.submit_at.get(self.now, []):
                self.submit(request)
            if self.now % CLIENT_RETRY_TICKS == 0:
                for request in self.requests:
                    if not self.executed_anywhere(request) and self.now > 30:
                        self.submit(request)
            for src, dst, message in self.network.due(self.now):
                if dst in self.byzantines:
                    self.byzantines[dst].observe(message)
                self.deliver(dst, MessageReceived(src, message))
            self.finish_transfers()
            for i in range(self.n):
                self.deliver(i, Tick(self.now * TICK_MS))
            view = max((r.view for r in self.replicas if r is not None), default=0)
            for index, byzantine in self.byzantines.items():
                for dst, message, delay in byzantine.on_tick(self.now, view):
                    self.network.send(self.now, index, dst, message, delay)
            if self.now >= scenario.fault_ticks and self.now % 10 == 0:
                liveness = self.liveness_problem()
                if liveness is None:
                    break
        injected = Counter(self.injected)
        injected.update(self.network.injected)
        for byzantine in self.byzantines.values():
            injected.update(byzantine.injected)
        honest_views = [r.view for i, r in enumerate(self.replicas) if r and i in self.honest]
        return SeedResult(
            seed=scenario.seed,
            kinds=scenario.kinds,
            safety_violations=list(self.checker.violations),
            liveness_failure=None if self.checker.violations else liveness,
            commits=max(self.apps[i].height for i in self.honest),
            view_changes=max(honest_views, default=0),
            faults_injected=injected,
            ticks=self.now,
            replica_faults=self.replica_faults,
        )

    def heal_all(self) -> None:
        self.log("HEAL: network reliable, partitions healed, crashed replicas restarted")
        self.network.conditions = self._conditions(self.scenario, healed=True)
        self.network.heal()
        self.crash_mid_step.clear()
        for i in range(self.n):
            self.restart(i)


def _short(item: object) -> str:
    text = repr(item)
    return text if len(text) <= 160 else text[:157] + "..."


def run_seed(scenario: Scenario, trace: bool = False) -> SeedResult:
    return Simulation(scenario, trace).run()
