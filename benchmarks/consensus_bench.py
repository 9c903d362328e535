"""Consensus core benchmark: simulated commits per CPU second, 4 replicas, 500-request batches.

Run: ``.venv/bin/python -m benchmarks.consensus_bench [--runs 5] [--batches 40] [--backlog 8]``

Only the core is timed. The cluster runs once over a perfect in-memory network
while each replica's input events are recorded; then each replica's events are
replayed into a fresh replica (deterministic, so it does the same work) between
two ``time.process_time`` reads. Signing and verifying are trivial stubs, so the
number is the state machine's own cost (messages, quorums, digests, dedupe,
execution bookkeeping), not ed25519's.

Reported (median of ``--runs``):

* commits per CPU second for the whole 4-replica cluster;
* core µs per request for one replica (what each node pays), against the
  the CPU cost of one ed25519 verification (PyNaCl), measured in the same run:
  what each request's signature costs to verify. Target: < 5 %.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections import deque

from nacl.signing import SigningKey

from consensus.actions import Broadcast, Execute, Send
from consensus.config import ReplicaConfig
from consensus.events import ClientBatchReady, Event, Executed, MessageReceived
from consensus.messages import Request
from consensus.replica import Replica

TARGET_FRACTION = 0.05
NODES = 4


def stub_sign(data: bytes) -> bytes:
    return b"s" * 64


def stub_verify(key: bytes, data: bytes, signature: bytes) -> bool:
    return True


def ed25519_verify_us(verifies: int = 2000) -> float:
    """CPU µs of one PyNaCl ed25519 verification of a 64-byte message, measured here."""
    signing = SigningKey(bytes(range(32)))
    signed = signing.sign(b"r" * 64)
    verify = signing.verify_key.verify
    verify(signed)  # warm-up
    start = time.process_time()
    for _ in range(verifies):
        verify(signed)
    return (time.process_time() - start) / verifies * 1e6


def make_cluster(batch_size: int) -> list[Replica]:
    validators = tuple(b"bench-validator-%d" % i for i in range(NODES))
    return [
        Replica(
            ReplicaConfig(
                chain_id=b"veil-bench",
                validators=validators,
                replica_id=i,
                checkpoint_interval=16,
                watermark_window=32,
                max_batch_size=batch_size,
            ),
            stub_sign,
            stub_verify,
        )
        for i in range(NODES)
    ]


def record_run(batches: int, batch_size: int, backlog: int) -> list[list[Event]]:
    """Run the cluster once and return the events each replica received, in order.

    The mempool stays ``backlog`` batches ahead of execution, as under load, so
    the primary pipelines proposals and every replica holds that many pending
    requests while it votes.
    """
    replicas = make_cluster(batch_size)
    received: list[list[Event]] = [[] for _ in range(NODES)]
    roots = [bytes(32)] * NODES
    heights = [0] * NODES
    queue: deque[tuple[int, Event]] = deque()
    submitted = 0

    def submit_next() -> None:
        nonlocal submitted
        if submitted < batches:
            requests = tuple(
                Request(b"b%d-r%d" % (submitted, i), b"x" * 200) for i in range(batch_size)
            )
            queue.extend((i, ClientBatchReady(requests)) for i in range(NODES))
            submitted += 1

    for _ in range(backlog):
        submit_next()
    while queue:
        index, event = queue.popleft()
        received[index].append(event)
        for action in replicas[index].step(event):
            if isinstance(action, Broadcast):
                queue.extend(
                    (j, MessageReceived(index, action.message)) for j in range(NODES) if j != index
                )
            elif isinstance(action, Send):
                queue.append((action.to, MessageReceived(index, action.message)))
            elif isinstance(action, Execute):
                roots[index] = hashlib.sha256(roots[index] + action.certificate.digest).digest()
                heights[index] = action.seq
                queue.append((index, Executed(action.seq, roots[index])))
                if index == 0:
                    submit_next()
    if len(set(heights)) != 1 or heights[0] != batches:
        raise RuntimeError(f"benchmark cluster did not commit every batch: {heights}")
    return received


def replay_cpu_seconds(received: list[list[Event]], batch_size: int) -> list[float]:
    """CPU seconds each replica's core spends on exactly the recorded events.

    The core is deterministic, so a fresh replica fed the same events does the
    same work; timing the whole replay with one pair of clock reads keeps the
    clock's own cost (tens of µs per read on this VM) out of the figure.
    """
    cpu: list[float] = []
    for index, events in enumerate(received):
        replica = make_cluster(batch_size)[index]
        step = replica.step
        start = time.process_time()
        for event in events:
            step(event)
        cpu.append(time.process_time() - start)
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--backlog", type=int, default=8, help="batches queued ahead")
    args = parser.parse_args()
    received = record_run(args.batches, args.batch_size, args.backlog)
    replay_cpu_seconds(received, args.batch_size)  # warm-up
    totals: list[float] = []
    per_replica_us: list[float] = []
    commits_per_s: list[float] = []
    requests = args.batches * args.batch_size
    for _ in range(args.runs):
        per_replica = replay_cpu_seconds(received, args.batch_size)
        total = sum(per_replica)
        totals.append(total)
        commits_per_s.append(args.batches / total)
        per_replica_us.append(max(per_replica) / requests * 1e6)
    us = statistics.median(per_replica_us)
    verify_us = statistics.median(ed25519_verify_us() for _ in range(args.runs))
    print(
        f"replicas: {NODES}, batch: {args.batch_size} requests, batches per run: "
        f"{args.batches}, backlog: {args.backlog} batches"
    )
    print(f"cluster core CPU per run (median): {statistics.median(totals) * 1e3:.1f} ms")
    print(f"commits per CPU second (4-replica cluster): {statistics.median(commits_per_s):.1f}")
    met = us < verify_us * TARGET_FRACTION
    print(
        f"core per request, busiest replica: {us:.2f} µs "
        f"= {us / verify_us * 100:.2f} % of one ed25519 verify "
        f"({verify_us:.1f} µs, measured); target < {TARGET_FRACTION * 100:.0f} %: "
        + ("met" if met else "NOT met")
    )


if __name__ == "__main__":
    main()
