"""Consensus core benchmark: simulated commits per CPU second, 4 replicas, 500-request batches.

Run: ``.venv/bin/python -m benchmarks.consensus_bench [--runs 5] [--batches 40]``

Only the core is timed: ``time.process_time`` around each ``Replica.step`` call,
with a trivial sign/verify stub so the number is the state machine's own cost
(messages, quorums, digests, dedupe, execution bookkeeping), not ed25519's. The
network is a perfect in-memory queue outside the timed region.

Reported (median of ``--runs``):

* commits per CPU second for the whole 4-replica cluster;
* core µs per request for one replica (what each node pays), against the
  ~75 µs each request's ed25519 signature costs to verify. Target: < 5 %.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

from consensus.actions import Broadcast, Execute, Send
from consensus.config import ReplicaConfig
from consensus.events import ClientBatchReady, Event, Executed, MessageReceived
from consensus.messages import Request
from consensus.replica import Replica

ED25519_VERIFY_US = 75.0
TARGET_FRACTION = 0.05
NODES = 4


def stub_sign(data: bytes) -> bytes:
    return b"s" * 64


def stub_verify(key: bytes, data: bytes, signature: bytes) -> bool:
    return True


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


def run_once(batches: int, batch_size: int) -> tuple[float, list[float], int]:
    """(total core CPU seconds, per-replica CPU seconds, commits)."""
    replicas = make_cluster(batch_size)
    cpu = [0.0] * NODES
    roots = [bytes(32)] * NODES
    heights = [0] * NODES
    clock = time.process_time
    for b in range(batches):
        requests = tuple(Request(b"b%d-r%d" % (b, i), b"x" * 200) for i in range(batch_size))
        queue: list[tuple[int, Event]] = [(i, ClientBatchReady(requests)) for i in range(NODES)]
        while queue:
            index, event = queue.pop(0)
            start = clock()
            actions = replicas[index].step(event)
            cpu[index] += clock() - start
            for action in actions:
                if isinstance(action, Broadcast):
                    queue.extend(
                        (j, MessageReceived(index, action.message))
                        for j in range(NODES)
                        if j != index
                    )
                elif isinstance(action, Send):
                    queue.append((action.to, MessageReceived(index, action.message)))
                elif isinstance(action, Execute):
                    roots[index] = hashlib.sha256(roots[index] + action.certificate.digest).digest()
                    heights[index] = action.seq
                    queue.append((index, Executed(action.seq, roots[index])))
    if len(set(heights)) != 1 or heights[0] != batches:
        raise RuntimeError(f"benchmark cluster did not commit every batch: {heights}")
    return sum(cpu), cpu, heights[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    run_once(2, args.batch_size)  # warm-up
    totals: list[float] = []
    per_replica_us: list[float] = []
    commits_per_s: list[float] = []
    for _ in range(args.runs):
        total, per_replica, commits = run_once(args.batches, args.batch_size)
        requests = commits * args.batch_size
        totals.append(total)
        commits_per_s.append(commits / total)
        per_replica_us.append(max(per_replica) / requests * 1e6)
    us = statistics.median(per_replica_us)
    print(f"replicas: {NODES}, batch: {args.batch_size} requests, batches per run: {args.batches}")
    print(f"cluster core CPU per run (median): {statistics.median(totals) * 1e3:.1f} ms")
    print(f"commits per CPU second (4-replica cluster): {statistics.median(commits_per_s):.1f}")
    met = us < ED25519_VERIFY_US * TARGET_FRACTION
    print(
        f"core per request, busiest replica: {us:.2f} µs "
        f"= {us / ED25519_VERIFY_US * 100:.2f} % of one ed25519 verify "
        f"({ED25519_VERIFY_US:.0f} µs); target < {TARGET_FRACTION * 100:.0f} %: "
        + ("met" if met else "NOT met")
    )


if __name__ == "__main__":
    main()
