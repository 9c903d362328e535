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
    ClientBatchReady,
    Event,
    Executed,
    MessageReceived,
    RequestSubmitted,
    StateTransferCompleted,
    Tick,
)
from consensus.messages import ForwardedRequests, Message, PrePrepare, Request
from consensus.replica import Replica
from consensus.sim.app import SimApp
from consensus.sim.byzantine import ByzantineReplica
from consensus.sim.checks import SafetyChecker, oversized_retained
from consensus.sim.keys import SIGNATURE_BYTES, public_key, signer, verify
from consensus.sim.network import Network, NetworkConditions
from consensus.sim.scenario import PROBE_WINDOW_TICKS, Scenario, TimedFault
from consensus.sim.state_transfer import history_problem, serve, serve_lie
from consensus.sim.storage import SimStorage
from consensus.sim.wire_check import WireCheck

CHAIN_ID = b"veil-sim"
LIVENESS_BOUND_TICKS = 4000
CLIENT_RETRY_TICKS = 50
VICTIM_PREFIX = b"client0-"
"""censoring_primary leaves out every request of client 0."""
FILLER_TICKS = 10
"""censoring_primary: how often its own client hands it filler to commit
(well inside the view-change timeout, so executions keep resetting the timer)."""
RETAINED_CHECK_TICKS = 25
WIRE_BATCH_SIZE = 120
WIRE_BURSTS = 4
WIRE_REQUESTS_PER_BURST = 180
WIRE_PAYLOAD_BYTES = (1024, 2048)
TICK_MS = 100
"""Simulated milliseconds per tick: replicas see ``Tick(now_ms = tick * TICK_MS)``."""


def sim_config(replica_id: int, nodes: int, scenario: Scenario | None = None) -> ReplicaConfig:
    """Small checkpoint interval and window so every run crosses GC and watermarks;
    wire seeds batch hundreds of requests, long_outage seeds use a small view bound."""
    view_bound = 64
    max_batch_size = 8
    if scenario is not None:
        view_bound = scenario.view_bound or view_bound
        max_batch_size = WIRE_BATCH_SIZE if scenario.wire else max_batch_size
    return ReplicaConfig(
        chain_id=CHAIN_ID,
        validators=tuple(public_key(i) for i in range(nodes)),
        replica_id=replica_id,
        checkpoint_interval=4,
        watermark_window=8,
        view_change_timeout_ticks=30,
        max_view_change_timeout_ticks=240,
        view_bound=view_bound,
        retransmit_interval_ticks=8,
        max_batch_size=max_batch_size,
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
        self.configs = [sim_config(i, n, scenario) for i in range(n)]
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
        self.wire = WireCheck() if scenario.wire else None
        # long_outage: while the replica is cut off, fresh proposals are lost.
        self.churn_ticks = next(
            (range(f.start_tick, f.end_tick) for f in scenario.timed if f.kind == "long_outage"),
            range(0),
        )
        self.probe: Request | None = None
        self.probe_problem: str | None = None
        self.probe_done = scenario.second_crash is None
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
                config=self.configs[index],
                # Just under the timeout: the request usually commits in time, so
                # backups must not give up on a primary that is merely slow.
                slow_delay_ticks=self.configs[0].view_change_timeout_ticks - 6,
                tick_ms=TICK_MS,
            )
            for index in scenario.byzantine
        }
        self.censors = set(scenario.byzantine) if "censoring_primary" in scenario.kinds else set()
        self.submit_at: dict[int, list[Request]] = {}
        if scenario.wire:
            self.requests = self._wire_requests()
        else:
            self.requests = [
                Request(b"client%d-req%d" % (i % 3, i), b"payload-%d" % i)
                for i in range(scenario.requests)
            ]
            for request in self.requests:
                tick = self.rng.randrange(0, scenario.fault_ticks - 20)
                self.submit_at.setdefault(tick, []).append(request)

    def _wire_requests(self) -> list[Request]:
        """Realistic traffic for wire seeds: bursts of 1-2 KiB requests, handed over
        as one ClientBatchReady each, so batches hold hundreds of requests."""
        requests: list[Request] = []
        low, high = WIRE_PAYLOAD_BYTES
        for burst in range(WIRE_BURSTS):
            tick = self.rng.randrange(0, self.scenario.fault_ticks - 20)
            for k in range(WIRE_REQUESTS_PER_BURST):
                i = burst * WIRE_REQUESTS_PER_BURST + k
                payload = self.rng.randbytes(self.rng.randint(low, high))
                request = Request(b"client%d-req%d" % (i % 3, i), payload)
                requests.append(request)
                self.submit_at.setdefault(tick, []).append(request)
        return requests

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
                    if self.wire is not None:
                        records = self.wire.records(records)
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
                self.transmit(index, dst, sent, delay)
            return
        if message.sender == index:
            self.checker.signed_by_honest(message)
        for dst in destinations:
            self.transmit(index, dst, message)

    def transmit(self, src: int, dst: int, message: Message, delay: int = 0) -> None:
        """Through the wire codec in wire seeds, then onto the simulated network."""
        if self.wire is not None:
            decoded = self.wire.message(message, honest=src in self.honest)
            if decoded is None:
                return
            message = decoded
        if self.now in self.churn_ticks and isinstance(message, PrePrepare):
            # long_outage: fresh proposals are lost, so every view times out.
            self.injected["churned_pre_prepare"] += 1
            return
        self.network.send(self.now, src, dst, message, delay)

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
            self.transfer_from(index, seq, root, peers)
        self._pending_transfers = still

    def transfer_from(self, index: int, seq: int, root: bytes, peers: tuple[int, ...]) -> None:
        """Ask the peers in turn (a lying source first, so its lie is always tried)
        and install the first history that checks out against the stable root."""
        app = self.apps[index]
        lying = "lying_state_source" in self.scenario.kinds
        liars = [p for p in peers if lying and p in self.byzantines]
        for peer in [*liars, *(p for p in peers if p not in liars)]:
            source = self.apps[peer]
            if self.replicas[peer] is None or source.height < seq or seq <= app.height:
                continue
            if peer in liars:
                self.injected["lying_state_source"] += 1
                served = serve_lie(source, seq, self.rng, CHAIN_ID)
            else:
                served = serve(source, seq)
            problem = history_problem(served, seq, root, CHAIN_ID)
            if problem is not None:
                self.injected["state_source_refused"] += 1
                self.log(f"r{index} refuses state from r{peer}: {problem}")
                continue
            app.install(list(served.digests), list(served.batches), list(served.metadata))
            if index in self.honest:
                for height in range(1, seq + 1):
                    self.checker.state_root(index, height, app.roots[height])
            ids = app.recent_ids(self.configs[index].request_id_window_heights)
            self.deliver(index, StateTransferCompleted(seq, root, ids))
            return

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
                case "partition_symmetric" | "lagging_replica" | "long_outage":
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

    def submit(self, requests: list[Request]) -> None:
        """Every replica gets the requests, except that a censoring primary's own
        client never hands it the victim's (it may not propose what it never saw).
        Wire seeds hand them over as one ClientBatchReady per replica."""
        if self.wire is not None:
            for i in range(self.n):
                given = tuple(r for r in requests if self.hands(i, r))
                if given and self.replicas[i] is not None:
                    self.deliver(i, ClientBatchReady(given))
            return
        for request in requests:
            for i in range(self.n):
                if self.replicas[i] is not None and self.hands(i, request):
                    self.deliver(i, RequestSubmitted(request))

    @staticmethod
    def relays_victim(message: Message) -> bool:
        return isinstance(message, ForwardedRequests) and any(
            r.request_id.startswith(VICTIM_PREFIX) for r in message.requests
        )

    def hands(self, index: int, request: Request) -> bool:
        return index not in self.censors or not request.request_id.startswith(VICTIM_PREFIX)

    def feed_censors(self) -> None:
        """The censoring primary commits filler often enough that an execution
        always comes before the backups' view-change timeout."""
        for i in sorted(self.censors):
            self.injected["censoring_primary"] += 1
            self.deliver(i, RequestSubmitted(Request(b"filler-%d-%d" % (i, self.now), b"f")))

    def probe_outage(self) -> None:
        """long_outage, after healing: crash another honest replica and check that
        the 2f+1 left, including the one that was cut off, still commit."""
        crashed = self.scenario.second_crash
        if crashed is None or self.probe_done:
            return
        start = self.scenario.fault_ticks + 40
        if self.now == start:
            self.crash(crashed)
            self.probe = Request(b"probe-after-outage", b"probe")
            self.submit([self.probe])
            self.injected["long_outage_probe"] += 1
        elif self.now > start and self.probe is not None:
            up = [i for i in sorted(self.honest) if i != crashed]
            if all(self.probe.request_id in self.apps[i].executed_ids for i in up):
                self.probe_done = True
            elif self.now >= start + PROBE_WINDOW_TICKS:
                heights = {i: self.apps[i].height for i in up}
                views = {i: r.view for i in up if (r := self.replicas[i]) is not None}
                self.probe_problem = (
                    f"halted with only r{crashed} down after a long outage: "
                    f"heights {heights}, views {views}"
                )
                self.probe_done = True
            if self.probe_done:
                self.restart(crashed)

    def executed_anywhere(self, request: Request) -> bool:
        return any(request.request_id in self.apps[i].executed_ids for i in self.honest)

    def liveness_problem(self) -> str | None:
        honest = sorted(self.honest)
        if self.probe_problem is not None:
            return self.probe_problem
        if not self.probe_done:
            return "long outage probe still running"
        if any(self.replicas[i] is None for i in honest):
            return "an honest replica is down"
        heights = {i: self.apps[i].height for i in honest}
        if len(set(heights.values())) != 1:
            return f"heights differ: {heights}"
        for request in self.requests:
            for i in honest:
                if request.request_id not in self.apps[i].executed_ids:
                    return f"request {request.request_id!r} not executed by r{i}"
        if self.probe is not None:
            for i in honest:
                if self.probe.request_id not in self.apps[i].executed_ids:
                    return f"probe request not executed by r{i}"
        # A NEW-VIEW may re-issue a prepared batch whose request committed
        # elsewhere (correct PBFT, issue 8 §1.9): the application skips the
        # repeat, as the ledger's execute_batch does. Every honest replica
        # must skip the same ones, so it executes the same requests per height.
        reference = self.apps[honest[0]].request_ids
        for i in honest[1:]:
            if self.apps[i].request_ids != reference:
                return f"r{i} executed other requests than r{honest[0]} at some height"
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
            self.submit(self.submit_at.get(self.now, []))
            if self.now % CLIENT_RETRY_TICKS == 0 and self.now > 30:
                self.submit([r for r in self.requests if not self.executed_anywhere(r)])
            if self.censors and self.now % FILLER_TICKS == 0:
                self.feed_censors()
            self.probe_outage()
            for src, dst, message in self.network.due(self.now):
                if dst in self.byzantines:
                    self.byzantines[dst].observe(message)
                if dst in self.censors and self.relays_victim(message):
                    # The censor's runtime drops the backups' relay of the
                    # victim's requests too: it claims it never got them.
                    self.injected["censored_relay"] += 1
                    continue
                self.deliver(dst, MessageReceived(src, message))
            self.finish_transfers()
            for i in range(self.n):
                self.deliver(i, Tick(self.now * TICK_MS))
            view = max((r.view for r in self.replicas if r is not None), default=0)
            for index, byzantine in self.byzantines.items():
                own = self.replicas[index]
                stable = own.stable_seq if own is not None else 0
                for dst, message, delay in byzantine.on_tick(self.now, view, stable):
                    self.transmit(index, dst, message, delay)
            if self.now % RETAINED_CHECK_TICKS == 0:
                self.check_retained()
            if self.wire is not None and self.wire.refusals:
                self.checker.violations.extend(self.wire.refusals[:3])
            if self.now >= scenario.fault_ticks and self.now % 10 == 0:
                liveness = self.liveness_problem()
                if liveness is None or self.probe_problem is not None:
                    break
        if not self.checker.violations:
            self.check_retained()
        injected = Counter(self.injected)
        injected.update(self.network.injected)
        if self.wire is not None:
            injected.update(self.wire.counts)
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

    def check_retained(self) -> None:
        """Resource safety: no honest replica keeps a field of the wrong length."""
        for i in sorted(self.honest):
            replica = self.replicas[i]
            problem = None if replica is None else oversized_retained(replica)
            if problem is not None:
                self.checker.violations.append(f"resources: replica {i} {problem}")
                return

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
