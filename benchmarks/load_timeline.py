"""Where a load run's commit-latency tail comes from: latency by submission second,
and the longest spells with no block committed.

    python -m benchmarks.load --dir D --kind transfer --duration 30 --rate 160 \\
        --outcomes run.json
    python -m benchmarks.load_timeline run.json [--gaps 8] [--over 2.0]

A p99 over the target can be steady queueing (a saturated machine: latency
rises with every second of the run) or a stall (latency normal, then one
spell in which no block commits, then a backlog that drains): the fix differs,
so the run's p99 alone does not say what to do. Latency by the node a tx was
sent to shows what the path costs: a tx sent to a backup passes its node's
proof batch and then the primary's, one sent to the primary only the
primary's. ``--outcomes`` keeps every acknowledged tx
(``LoadReport.to_json(with_outcomes=True)``); a block's commit time is the
earliest commit seen among its txs (submitted + latency). Percentiles are
nearest-rank, as the load report's and the chaos report's
(``devnet.percentile``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devnet.percentile import percentile


@dataclass(frozen=True, slots=True)
class SecondRow:
    second: int
    """Whole seconds after the first submission."""
    txs: int
    p50_s: float
    max_s: float
    over: int
    """Txs of this second whose latency exceeded the threshold."""


@dataclass(frozen=True, slots=True)
class NodeRow:
    node: int
    """The node the tx was sent to."""
    txs: int
    p50_s: float
    p99_s: float


@dataclass(frozen=True, slots=True)
class CommitGap:
    seconds: float
    after_height: int
    at_s: float
    """When the block before the gap committed, after the first submission."""


@dataclass(frozen=True, slots=True)
class Timeline:
    seconds: tuple[SecondRow, ...]
    gaps: tuple[CommitGap, ...]
    """The longest spells between consecutive block commits, longest first."""
    blocks: int
    nodes: tuple[NodeRow, ...] = ()


def _of_some(latencies: list[float], fraction: float) -> float:
    value = percentile(latencies, fraction)
    assert value is not None, "only called with the latencies of at least one tx"
    return value


def _committed(
    outcomes: Sequence[Mapping[str, object]],
) -> list[tuple[float, float, int, int]]:
    rows = []
    for outcome in outcomes:
        if outcome.get("status") != "committed":
            continue
        submitted, latency, height, node = (
            outcome.get("submitted_at_s"),
            outcome.get("latency_s"),
            outcome.get("height"),
            outcome.get("node"),
        )
        if not isinstance(submitted, (int, float)) or not isinstance(latency, (int, float)):
            raise ValueError("a committed outcome needs submitted_at_s and latency_s")
        if not isinstance(height, int):
            raise ValueError("a committed outcome needs its height")
        if not isinstance(node, int):
            raise ValueError("a committed outcome needs the node it was sent to")
        rows.append((float(submitted), float(latency), height, node))
    return rows


def timeline(
    outcomes: Sequence[Mapping[str, object]], *, gaps: int = 8, over_s: float = 2.0
) -> Timeline:
    """Latency by submission second and the ``gaps`` longest commit gaps."""
    rows = _committed(outcomes)
    if not rows:
        return Timeline((), (), 0)
    start = min(row[0] for row in rows)
    by_second: dict[int, list[float]] = {}
    by_node: dict[int, list[float]] = {}
    block_commit: dict[int, float] = {}
    for submitted, latency, height, node in rows:
        by_second.setdefault(math.floor(submitted - start), []).append(latency)
        by_node.setdefault(node, []).append(latency)
        committed_at = submitted + latency - start
        block_commit[height] = min(block_commit.get(height, committed_at), committed_at)
    seconds = []
    for second in sorted(by_second):
        latencies = sorted(by_second[second])
        seconds.append(
            SecondRow(
                second,
                len(latencies),
                _of_some(latencies, 0.5),
                latencies[-1],
                sum(1 for value in latencies if value > over_s),
            )
        )
    ordered = sorted((at, height) for height, at in block_commit.items())
    spells = [
        CommitGap(later - at, height, at)
        for (at, height), (later, _) in itertools.pairwise(ordered)
    ]
    spells.sort(key=lambda gap: gap.seconds, reverse=True)
    nodes = []
    for node in sorted(by_node):
        latencies = sorted(by_node[node])
        nodes.append(
            NodeRow(node, len(latencies), _of_some(latencies, 0.5), _of_some(latencies, 0.99))
        )
    return Timeline(tuple(seconds), tuple(spells[:gaps]), len(block_commit), tuple(nodes))


def render(result: Timeline, over_s: float) -> str:
    lines = [f"{'second':>6} {'txs':>5} {'p50 s':>6} {'max s':>6} {f'> {over_s:g} s':>7}"]
    for row in result.seconds:
        lines.append(
            f"{row.second:>6} {row.txs:>5} {row.p50_s:>6.2f} {row.max_s:>6.2f} {row.over:>7}"
        )
    lines.append(f"blocks: {result.blocks}; longest spells with no block committed:")
    for gap in result.gaps:
        lines.append(f"  {gap.seconds:.2f} s after height {gap.after_height} (at {gap.at_s:.1f} s)")
    for node in result.nodes:
        lines.append(
            f"sent to node {node.node}: {node.txs} txs, "
            f"p50 {node.p50_s:.2f} s, p99 {node.p99_s:.2f} s"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load_timeline", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("outcomes", type=Path, help="benchmarks.load --outcomes's file")
    parser.add_argument("--gaps", type=int, default=8, help="longest commit gaps shown")
    parser.add_argument("--over", type=float, default=2.0, help="latency threshold, s")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.outcomes.read_text())
        outcomes = report["outcomes"]
        if not isinstance(outcomes, list):
            raise ValueError("'outcomes' is not a list")
        print(render(timeline(outcomes, gaps=args.gaps, over_s=args.over), args.over))
    except (OSError, KeyError, ValueError) as exc:
        print(f"load_timeline: {args.outcomes}: {exc!r}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
