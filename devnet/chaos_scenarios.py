"""The chaos scenarios (issue 12): each breaks a running devnet in rounds until its deadline.

Every round ends with a heal and a recovery time: from the heal (a restart, a
removed partition) until every node has committed a block above the highest height
any node had at the heal; ``kill-primary`` measures from the kill, as the
survivors must change view to go on. A recovery slower than ``recovery_bound_s``
is a violation, as is progress while a 2 | 2 split lasts.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from client.sdk import VeilApiError
from devnet.chaos_checks import heights, wait_progress
from devnet.chaos_faults import NetworkFaults, SmallDisk, require_netns
from devnet.chaos_reads import POLL_TIMEOUT_S, Reads
from devnet.network import PEER_PORT_OFFSET, Devnet, DevnetError

RESTART_TIMEOUT_S = 120.0
"""A restarted node must be back at the others' height within this long (a disk run on
this loaded 2-core machine needed more than 60 s to catch up about 100 blocks)."""
BYZANTINE_ENV = {"VEIL_BYZANTINE_TEST": "1"}
SPLIT_SETTLE_S = 1.5
"""Commits already in flight when a split starts may land during this long."""


class RunStoppedError(Exception):
    """The fault phase cannot go on (a node exited by itself); the run records it as a
    violation, heals and still checks what the nodes hold."""


@dataclass(slots=True)
class ChaosRun:
    devnet: Devnet
    scenario: str
    rng: random.Random
    deadline_s: float
    recovery_bound_s: float
    reads: Reads
    recoveries_s: list[float] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rounds: int = 0
    honest_faults: dict[str, float] = field(default_factory=dict)
    network: NetworkFaults | None = None
    byzantine_node: int | None = None
    max_rounds: int | None = None
    enough_committed: Callable[[], bool] | None = None
    """``--transfers``: true once that many transfers committed in the fault phase; a
    scenario that holds one fault (``catch-up``) heals then rather than at the deadline."""
    say: Callable[[str], None] = field(default=lambda line: None)
    """Progress, a line per round: a soak runs for an hour and must show it is alive."""

    @property
    def all_nodes(self) -> list[int]:
        return list(range(self.devnet.nodes))

    def time_left(self) -> bool:
        """Another round: before the deadline and below ``max_rounds``."""
        if self.max_rounds is not None and self.rounds >= self.max_rounds:
            return False
        return time.monotonic() < self.deadline_s

    def hold(self) -> None:
        """Until the deadline, or until ``enough_committed`` says so."""
        while time.monotonic() < self.deadline_s:
            if self.enough_committed is not None and self.enough_committed():
                return
            time.sleep(min(1.0, max(0.0, self.deadline_s - time.monotonic())))

    def top_height(self, nodes: list[int] | None = None) -> int:
        return max(heights(self.reads, nodes or self.all_nodes).values(), default=0)

    def recovered(self, what: str, nodes: list[int], above: int, since_s: float) -> None:
        """Record how long after ``since_s`` every one of ``nodes`` passed ``above``."""
        remaining = self.recovery_bound_s - (time.monotonic() - since_s)
        waited = wait_progress(self.reads, nodes, above, max(0.0, remaining))
        if waited is None:
            violation = (
                f"round {self.rounds}: no progress within {self.recovery_bound_s:g} s after {what}"
            )
            self.violations.append(violation)
            self.say(f"VIOLATION {violation}")
            return
        recovery_s = time.monotonic() - since_s
        self.recoveries_s.append(recovery_s)
        self.say(f"round {self.rounds + 1}: {what}: progress again after {recovery_s:.1f} s")

    def restart(
        self, index: int, extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> None:
        if self.devnet.pid(index) is not None:
            self.devnet.kill(index)
        others = [i for i in self.all_nodes if i != index]
        target = self.top_height(others)
        self.devnet.start(index, extra_args, env)
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        # Back and caught up with what the others had, so the next round's fault is
        # the only one (two nodes out of four at once is more than f = 1).
        while time.monotonic() < deadline:
            try:
                if self.reads.client(index, POLL_TIMEOUT_S).status().height >= target:
                    return
            except (VeilApiError, OSError):
                if self.devnet.pid(index) is None:
                    raise RunStoppedError(
                        f"node {index} exited after a restart; see {self.devnet.log_file(index)}"
                    ) from None
            time.sleep(0.1)
        self.violations.append(
            f"round {self.rounds}: node {index} not back at height {target} "
            f"{RESTART_TIMEOUT_S:g} s after its restart"
        )

    def primary(self) -> int:
        """The primary of the view most nodes are in; ``NoAnswerError`` if none answers within
        the recovery bound."""
        views = []
        for index in self.all_nodes:
            try:
                views.append(self.reads.client(index, POLL_TIMEOUT_S).status().view)
            except (VeilApiError, OSError):
                continue
        if not views:  # all silent at once: ask patiently (a loaded machine, not a fault)
            views.append(
                self.reads.first_answer(self.all_nodes, "GET /v1/status", lambda c: c.status()).view
            )
        return max(set(views), key=views.count) % self.devnet.nodes

    def pause(self, low_s: float, high_s: float) -> None:
        time.sleep(
            min(self.rng.uniform(low_s, high_s), max(0.0, self.deadline_s - time.monotonic()))
        )


# --- kill rounds ---------------------------------------------------------------------


def kill_primary(run: ChaosRun) -> None:
    while run.time_left():
        victim = run.primary()
        others = [i for i in run.all_nodes if i != victim]
        top = run.top_height(others)
        killed_at = time.monotonic()
        run.devnet.kill(victim)
        run.recovered(f"killing primary {victim}", others, top, killed_at)
        run.pause(0.5, 3.0)
        run.restart(victim)
        run.rounds += 1


def kill_random(run: ChaosRun) -> None:
    while run.time_left():
        victim = run.rng.randrange(run.devnet.nodes)
        # A random moment under load: often mid-write or mid-fsync.
        time.sleep(run.rng.uniform(0.0, 0.5))
        run.devnet.kill(victim)
        run.pause(0.2, 2.0)
        run.restart(victim)
        top = run.top_height()
        run.recovered(f"restarting node {victim}", run.all_nodes, top, time.monotonic())
        run.rounds += 1


def kill_all(run: ChaosRun) -> None:
    while run.time_left():
        for index in run.all_nodes:
            run.devnet.kill(index)
        run.pause(0.5, 2.0)
        healed_at = time.monotonic()
        for index in run.all_nodes:
            run.devnet.start(index)
        top = run.top_height()
        run.recovered("restarting every node", run.all_nodes, top, healed_at)
        run.rounds += 1


# --- network faults (--netns) ----------------------------------------------------


def _network(run: ChaosRun) -> NetworkFaults:
    if run.network is None:
        run.network = NetworkFaults(require_netns(run.devnet.netns_layout, run.scenario))
    return run.network


def partition(run: ChaosRun) -> None:
    """Alternately a 2 | 2 split (no progress allowed) and one node cut off."""
    faults = _network(run)
    while run.time_left():
        nodes = run.all_nodes
        split = run.rounds % 2 == 0
        if split:
            run.rng.shuffle(nodes)
            half = len(nodes) // 2
            groups = [sorted(nodes[:half]), sorted(nodes[half:])]
        else:
            alone = run.rng.randrange(run.devnet.nodes)
            groups = [[alone], [i for i in run.all_nodes if i != alone]]
        faults.partition(groups)
        time.sleep(SPLIT_SETTLE_S)
        during = heights(run.reads, run.all_nodes)
        run.pause(3.0, 6.0)
        after = heights(run.reads, run.all_nodes)
        if split:
            moved = {i: (during[i], h) for i, h in after.items() if i in during and h > during[i]}
            if moved:
                run.violations.append(f"round {run.rounds}: progress while split {groups}: {moved}")
        top = max(after.values(), default=0)
        healed_at = time.monotonic()
        faults.heal()
        run.recovered(f"healing partition {groups}", run.all_nodes, top, healed_at)
        run.rounds += 1


def catch_up(run: ChaosRun) -> None:
    """One node cut off for the whole fault phase while the others commit; the recovery
    is its catch-up: from the heal until it has every block the others had then. With
    ``--transfers N`` the cut lasts until N transfers committed (the duration bounds it).
    Node 0 stays connected: the commit watcher follows it, and cut off it would see no
    commit, so the transfers counted would never reach N."""
    faults = _network(run)
    alone = 1 + run.rng.randrange(run.devnet.nodes - 1)
    others = [i for i in run.all_nodes if i != alone]
    start_height = heights(run.reads, [alone]).get(alone, 0)
    cut_at = time.monotonic()
    faults.partition([[alone], others])
    run.hold()
    top = run.top_height(others)
    healed_at = time.monotonic()
    faults.heal()
    run.recovered(f"reconnecting node {alone}", [alone], top - 1, healed_at)
    run.notes.append(
        f"node {alone} was cut off for {healed_at - cut_at:.0f} s from height {start_height}, "
        f"{top - start_height} blocks behind at the heal; caught up to {top}"
    )
    run.rounds += 1


def latency(run: ChaosRun) -> None:
    faults = _network(run)
    delays = {}
    peer_ports = [run.devnet.base_port + PEER_PORT_OFFSET + i for i in run.all_nodes]
    how = ""
    for index in run.all_nodes:
        base_ms = run.rng.randint(50, 300)
        jitter_ms = max(1, base_ms // 5)
        how = faults.delay(index, base_ms, jitter_ms, peer_ports, run.rng.randrange(1 << 30))
        delays[index] = f"{base_ms}±{jitter_ms} ms"
    run.notes.append(f"latency per node's outgoing links ({how}): {delays}")
    _hold_then_heal(run, faults, "latency")


def loss(run: ChaosRun) -> None:
    faults = _network(run)
    rates = {}
    for index in run.all_nodes:
        rates[index] = run.rng.randint(5, 20)
        faults.loss(index, rates[index])
    run.notes.append(f"outgoing loss per node (%): {rates}")
    _hold_then_heal(run, faults, "loss")


def _hold_then_heal(run: ChaosRun, faults: NetworkFaults, what: str) -> None:
    time.sleep(max(0.0, run.deadline_s - time.monotonic()))
    top = run.top_height()
    healed_at = time.monotonic()
    faults.heal()
    run.recovered(f"removing the {what}", run.all_nodes, top, healed_at)
    run.rounds += 1


def flaky(run: ChaosRun) -> None:
    faults = _network(run)
    while run.time_left():
        victim = run.rng.randrange(run.devnet.nodes)
        faults.link_down(victim)
        run.pause(0.5, 4.0)
        top = run.top_height()
        healed_at = time.monotonic()
        faults.link_up(victim)
        run.recovered(f"link {victim} back up", run.all_nodes, top, healed_at)
        run.pause(0.5, 2.0)
        run.rounds += 1


# --- a byzantine validator, a full disk ------------------------------------------------


def byzantine(run: ChaosRun) -> None:
    """The next view's primary restarted with ``--byzantine all`` (as a backup, so its
    restart forces no view change); then each round SIGKILLs the honest primary, so the
    views move on and the attacker is primary every ``n`` views, where it equivocates,
    floods junk and censors. A round's recovery is from the kill until the others commit
    again; the honest nodes must have counted faults."""
    view = _view(run, run.primary())
    attacker = (view + 1) % run.devnet.nodes
    run.byzantine_node = attacker
    seed = str(run.rng.randrange(1 << 30))
    started_s = time.monotonic()
    run.restart(attacker, ("--byzantine", "all", "--byzantine-seed", seed), BYZANTINE_ENV)
    run.deadline_s += time.monotonic() - started_s  # the attack starts once it is back
    honest = [i for i in run.all_nodes if i != attacker]
    first_view = _view(run, honest[0])
    while run.time_left():
        victim = run.primary()
        if victim == attacker:  # it is primary now: let the honest nodes throw it out
            time.sleep(0.5)
            continue
        others = [i for i in run.all_nodes if i != victim]
        top = run.top_height(others)
        killed_at = time.monotonic()
        run.devnet.kill(victim)
        run.recovered(f"killing primary {victim} (attacker {attacker})", others, top, killed_at)
        run.pause(0.5, 2.0)
        run.restart(victim)
        run.rounds += 1
    last_view = _view(run, honest[0])
    attacked = sum(
        1 for v in range(first_view + 1, last_view + 1) if v % run.devnet.nodes == attacker
    )
    run.notes.append(
        f"views {first_view}..{last_view}; the attacker {attacker} was primary in {attacked}"
    )
    for index in honest:
        for kind, value in _faults(run, index).items():
            run.honest_faults[kind] = run.honest_faults.get(kind, 0) + value
    if not run.honest_faults:
        run.violations.append("the honest nodes counted no peer fault from the attacker")
    run.restart(attacker)  # honest again, for the convergence check


def _view(run: ChaosRun, index: int) -> int:
    return run.reads.from_node(index, "GET /v1/status", lambda c: c.status()).view


def _faults(run: ChaosRun, index: int) -> dict[str, float]:
    text = run.reads.from_node(index, "GET /metrics", lambda c: c.metrics())
    found = {}
    for line in text.splitlines():
        if line.startswith("veil_faults_total{"):
            labels, _, value = line.rpartition(" ")
            kind = labels.split('kind="', 1)[1].split('"', 1)[0]
            found[kind] = float(value)
    return found


def disk(run: ChaosRun) -> None:
    """A node's data dir on a small tmpfs, filled: it must stop loudly (exit, "node
    halted" in its log), then rejoin with everything once the space is freed."""
    if os.geteuid() != 0:
        raise DevnetError("the disk scenario mounts a tmpfs: it needs root")
    while run.time_left():
        victim = run.rng.randrange(run.devnet.nodes)
        small = SmallDisk(run.devnet.node_dir(victim) / "data")
        run.devnet.kill(victim)
        small.mount()
        try:
            run.restart(victim)
            log_size = run.devnet.log_file(victim).stat().st_size
            small.fill()
            stopped_by = time.monotonic() + RESTART_TIMEOUT_S
            while run.devnet.pid(victim) is not None and time.monotonic() < stopped_by:
                time.sleep(0.1)
            if run.devnet.pid(victim) is not None:
                run.violations.append(f"node {victim} kept running on a full disk")
                run.devnet.kill(victim)
            with run.devnet.log_file(victim).open("rb") as log:
                log.seek(log_size)
                tail = log.read().decode("utf-8", "replace")
            if problem := _unclean_stop(tail):
                run.violations.append(f"node {victim} did not halt cleanly, disk full: {problem}")
            small.clear()
            top = run.top_height()
            healed_at = time.monotonic()
            run.restart(victim)
            run.recovered(f"freeing node {victim}'s disk", run.all_nodes, top, healed_at)
        finally:
            if run.devnet.pid(victim) is not None:
                run.devnet.kill(victim)
            small.unmount()
            run.restart(victim)
        run.rounds += 1


def _unclean_stop(log_tail: str) -> str:
    """Why a node's log since the disk filled is not a clean halt, or "" if it is; the
    reason quotes the log's last lines so a one-off failure in CI can be read from it."""
    if "Traceback" in log_tail:
        reason = "a traceback in its log"
    elif "node halted" not in log_tail:
        reason = 'no "node halted" in its log'
    else:
        return ""
    last = " | ".join(log_tail.strip().splitlines()[-6:])
    return f"{reason}; its log ends: {last[-1500:]}"


SCENARIOS: dict[str, Callable[[ChaosRun], None]] = {
    "kill-primary": kill_primary,
    "kill-random": kill_random,
    "kill-all": kill_all,
    "partition": partition,
    "catch-up": catch_up,
    "latency": latency,
    "loss": loss,
    "flaky": flaky,
    "byzantine": byzantine,
    "disk": disk,
}
