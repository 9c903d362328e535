"""``python -m devnet chaos``: break a running devnet under load and check it (issue 12).

A run: the load starts (``chaos_load``); a calm baseline phase (a quarter of the
duration, at most ``BASELINE_MAX_S``); the scenario's rounds until the duration is
spent; every fault healed and every node running; the load stopped; then the
checks (``chaos_checks``): no fork, no lost commit, convergence, and each round's
bounded recovery. The result holds tx/s and p99 commit latency for the baseline
and the fault phase, measured in the same run.
"""

from __future__ import annotations

import functools
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass

from client.api_types import TxStatus
from client.sdk import Client, VeilApiError
from devnet.chaos_checks import (
    NodeChain,
    fork_heights,
    lost_commits,
    read_chain,
    wait_converged,
)
from devnet.chaos_load import Ack, CommitWatcher, GeneratorLoad
from devnet.chaos_reads import NoAnswerError, Reads
from devnet.chaos_scenarios import SCENARIOS, ChaosRun, RunStoppedError
from devnet.network import Devnet, DevnetError
from devnet.percentile import percentile

BASELINE_MAX_S = 10.0
DEFAULT_RATE_TX_PER_S = 8.0
"""Offered load in all, transfers and attests (``chaos_load``)."""
DEFAULT_RECOVERY_BOUND_S = 60.0


@dataclass(frozen=True, slots=True)
class PhaseNumbers:
    seconds: float
    committed_tx_per_s: float
    latency_s_p50: float | None
    latency_s_p99: float | None


@dataclass(frozen=True, slots=True)
class ChaosResult:
    scenario: str
    seed: int
    duration_s: float
    rounds: int
    acknowledged: int
    committed: int
    acknowledged_by_kind: dict[str, int]
    committed_by_kind: dict[str, int]
    """Acknowledged txs in every node's chain, by kind (``attest``, ``transfer``)."""
    uncommitted: int
    uncommitted_statuses: dict[str, int]
    """Why acknowledged txs never committed: e.g. ``rejected REPLAYED`` (a higher nonce of
    the bank, acknowledged by another node while its own was down, was ordered first) or
    ``unknown`` (held only by a node that was killed before passing it on)."""
    lost: int
    forks: int
    converged: bool
    recovery_s_p50: float | None
    recovery_s_p99: float | None
    recovery_bound_s: float
    baseline: PhaseNumbers
    faulted: PhaseNumbers
    honest_faults: dict[str, float]
    violations: list[str]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def phase_numbers(
    acks: list[Ack], seen_s: dict[bytes, float], start_s: float, end_s: float
) -> PhaseNumbers:
    """tx/s: acknowledged txs committed within [start, end); latency: ack to first seen
    committed, for the txs acknowledged in the phase."""
    committed = [a for a in acks if start_s <= seen_s.get(a.tx_id, -1.0) < end_s]
    latencies = [
        seen_s[a.tx_id] - a.at_s for a in acks if start_s <= a.at_s < end_s and a.tx_id in seen_s
    ]
    seconds = max(1e-9, end_s - start_s)
    return PhaseNumbers(
        round(seconds, 2),
        round(len(committed) / seconds, 2),
        _rounded(percentile(latencies, 0.5)),
        _rounded(percentile(latencies, 0.99)),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _tx(tx_id: bytes, client: Client) -> TxStatus:
    return client.tx(tx_id)


def final_statuses(reads: Reads, tx_ids: set[bytes]) -> dict[str, int]:
    """What the first node to answer says about each of ``tx_ids``, counted; once no node
    answers within the budget, the rest are counted as ``no answer``."""
    found: Counter[str] = Counter()
    silent = False
    nodes = list(range(reads.devnet.nodes))
    for tx_id in tx_ids:
        if silent:
            found["no answer"] += 1
            continue
        try:
            status = reads.first_answer(nodes, "GET /v1/txs/ID", functools.partial(_tx, tx_id))
            found[f"{status.status} {status.reason or ''}".strip()] += 1
        except VeilApiError as exc:
            found[exc.code.lower()] += 1
        except NoAnswerError:
            silent = True
            found["no answer"] += 1
    return dict(found)


def _require_running(reads: Reads) -> None:
    devnet = reads.devnet
    down = [i for i in range(devnet.nodes) if devnet.pid(i) is None]
    for index in range(devnet.nodes):
        if index in down:
            continue
        try:
            reads.from_node(index, "GET /v1/status", lambda c: c.status())
        except NoAnswerError:
            down.append(index)
    if down:
        raise DevnetError(
            f"nodes {sorted(down)} of {devnet.root} do not answer; start the devnet with "
            f"`python -m devnet up --dir {devnet.root}` first"
        )


def read_chains(reads: Reads, up_to_height: int | None, violations: list[str]) -> list[NodeChain]:
    """Every node's chain that it serves within the budget; a silent node is a violation."""
    chains = []
    for index in range(reads.devnet.nodes):
        try:
            chains.append(read_chain(reads, index, up_to_height))
        except NoAnswerError as exc:
            violations.append(f"node {index} did not serve its chain for the checks: {exc}")
    return chains


def run_chaos(
    devnet: Devnet,
    scenario: str,
    duration_s: float,
    seed: int,
    *,
    rate_tx_per_s: float = DEFAULT_RATE_TX_PER_S,
    recovery_bound_s: float = DEFAULT_RECOVERY_BOUND_S,
    max_rounds: int | None = None,
    transfers: int | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> ChaosResult:
    if scenario not in SCENARIOS:
        raise DevnetError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    reads = Reads(devnet, recovery_bound_s)
    _require_running(reads)
    rng = random.Random(seed)
    load = GeneratorLoad(devnet, rate_tx_per_s, duration_s, transfers=transfers, say=say)
    watcher = CommitWatcher(devnet, reads)
    watcher.note_tip()
    load.start()
    watcher.start()
    started_s = time.monotonic()
    baseline_s = min(BASELINE_MAX_S, duration_s / 4)
    say(f"calm baseline under load for {baseline_s:g} s")
    time.sleep(baseline_s)
    faults_from_s = time.monotonic()
    run = ChaosRun(
        devnet,
        scenario,
        rng,
        faults_from_s + duration_s - baseline_s,
        recovery_bound_s,
        reads,
        max_rounds=max_rounds,
        say=say,
    )
    limit = f" or {max_rounds} rounds" if max_rounds else ""
    say(f"{scenario}: faults for {duration_s - baseline_s:g} s{limit}")
    if transfers is not None:
        run.enough_committed = functools.partial(
            _enough, load, watcher.seen_s, faults_from_s, transfers
        )
    try:
        SCENARIOS[scenario](run)
    except (NoAnswerError, RunStoppedError) as exc:  # a fact of the run, not a crash of the tool
        run.violations.append(f"round {run.rounds}: {exc}")
    finally:
        if run.network is not None:
            run.network.heal()
        for index in range(devnet.nodes):
            if devnet.pid(index) is None:
                devnet.start(index)
    faults_to_s = time.monotonic()
    say(f"healed after {run.rounds} rounds; stopping the load and waiting for the nodes to settle")
    acks = load.stop()
    converged_at = wait_converged(reads, list(range(devnet.nodes)))
    watcher.stop()
    if converged_at is None:
        run.violations.append(
            "the nodes did not settle on one height and state root after the heal"
        )
    say(f"reading every node's chain up to height {converged_at} for the checks")
    chains = read_chains(reads, converged_at, run.violations)
    forks = fork_heights(chains)
    if forks:
        run.violations.append(f"fork at heights {forks[:10]}")
    reported = set(watcher.seen_s)
    lost = lost_commits(chains, reported)
    if lost:
        run.violations.append(
            f"{len(lost)} committed txs missing from some node, e.g. {sorted(lost)[0].hex()}"
        )
    in_chain = frozenset.intersection(*(c.tx_ids for c in chains)) if chains else frozenset()
    acked_ids = {a.tx_id for a in acks}
    kinds = {a.tx_id: a.kind for a in acks}
    return ChaosResult(
        scenario=scenario,
        seed=seed,
        duration_s=round(faults_to_s - started_s, 1),
        rounds=run.rounds,
        acknowledged=len(acked_ids),
        committed=len(acked_ids & in_chain),
        acknowledged_by_kind=dict(Counter(kinds.values())),
        committed_by_kind=dict(Counter(kinds[t] for t in acked_ids & in_chain)),
        uncommitted=len(acked_ids - in_chain),
        uncommitted_statuses=final_statuses(reads, acked_ids - in_chain),
        lost=len(lost),
        forks=len(forks),
        converged=converged_at is not None,
        recovery_s_p50=_rounded(percentile(run.recoveries_s, 0.5)),
        recovery_s_p99=_rounded(percentile(run.recoveries_s, 0.99)),
        recovery_bound_s=recovery_bound_s,
        baseline=phase_numbers(acks, watcher.seen_s, started_s, faults_from_s),
        faulted=phase_numbers(acks, watcher.seen_s, faults_from_s, faults_to_s),
        honest_faults=run.honest_faults,
        violations=run.violations,
        notes=run.notes
        + _transfer_notes(load, watcher.seen_s, faults_from_s, transfers)
        + _load_notes(load)
        + _recovery_notes(run.recoveries_s),
    )


def _enough(load: GeneratorLoad, seen_s: dict[bytes, float], since_s: float, wanted: int) -> bool:
    return load.committed_since("transfer", seen_s, since_s) >= wanted


def _recovery_notes(recoveries_s: list[float]) -> list[str]:
    return [f"mean recovery {statistics.fmean(recoveries_s):.2f} s"] if recoveries_s else []


def _transfer_notes(
    load: GeneratorLoad, seen_s: dict[bytes, float], since_s: float, wanted: int | None
) -> list[str]:
    if wanted is None:
        return []
    done = load.committed_since("transfer", seen_s, since_s)
    return [f"{done} transfers committed in the fault phase ({wanted} asked for)"]


def _load_notes(load: GeneratorLoad) -> list[str]:
    """What the load generator says about its own run (an error, prepared txs run out)."""
    if load.error is not None:
        return [f"the load generator failed: {type(load.error).__name__}: {load.error}"]
    report = load.report
    if report is None:
        return ["the load generator did not finish its drain"]
    notes = [
        f"load: {report.prepared} txs prepared, {report.sent} sent, {report.resubmitted} "
        f"resubmitted, {report.unreachable} unreachable answers, busy {report.busy or 0}, "
        f"{report.broken_chains} transfer chains ended by a refusal"
    ]
    if report.exhausted:
        notes.append("the load ran out of prepared txs before the faults ended")
    return notes
