"""Sample one validator's event loop on SIGPROF, to see where its CPU goes without
slowing it the way a deterministic profiler does.

    python -m benchmarks.node_sample --config DEVNET/nodes/N/node.toml --out F [--interval-ms 2]

Like ``benchmarks.node_profile``: kill node N of a devnet, start it with this,
run the load, SIGTERM it; ``--out`` gets the event loop's functions by share
of its busy samples, inclusive (the function or anything it called was
running), exclusive (the innermost frame), and exclusive by caller (the
innermost frame with the one that called it).

How: ``setitimer(ITIMER_PROF)`` sends SIGPROF after every ``--interval-ms`` of
the process's CPU (every thread's), and the signal is blocked in every other
Python thread (and so in threads they start, LevelDB's among them), so it is
handled on the event loop's thread, whose current stack is then counted.
Samples with the loop idle in ``select`` are left out. The node under
``node_profile`` ran several times slower than its peers and fell behind
(docs/performance.md); under this it keeps up: one sample costs a stack walk
every few milliseconds, not a timer reading per call. Two biases to keep in
mind: a sample lands where the loop next runs Python, so a call that released
the GIL (a LevelDB read, libsodium through cffi) is also charged the time the
loop then waited for the GIL while the worker thread ran; and the worker
thread itself is not sampled (``/proc/PID/task/*/stat`` gives its CPU).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from node.main import main as node_main

IDLE_FRAMES = frozenset({("selectors.py", "select")})
"""Innermost frames that mean the event loop is waiting, not working."""


class LoopSampler:
    """Counts the main thread's stacks at each SIGPROF; ``install`` then ``uninstall``."""

    def __init__(self, interval_s: float) -> None:
        if not 0 < interval_s <= 1:
            raise ValueError(f"the interval must be in (0, 1] s, got {interval_s}")
        self.interval_s = interval_s
        self.samples = 0
        self.busy = 0
        self.inclusive: Counter[str] = Counter()
        self.exclusive: Counter[str] = Counter()
        self.by_caller: Counter[str] = Counter()
        self._original_run: Callable[[threading.Thread], None] | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        del signum
        self.samples += 1
        if frame is None or (
            (os.path.basename(frame.f_code.co_filename), frame.f_code.co_name) in IDLE_FRAMES
        ):
            return
        self.busy += 1
        stack: list[str] = []
        current: FrameType | None = frame
        while current is not None:
            code = current.f_code
            stack.append(f"{code.co_filename}:{code.co_firstlineno}({code.co_name})")
            current = current.f_back
        self.exclusive[stack[0]] += 1
        # A generated __init__ or a library call says little until its caller is known.
        self.by_caller[f"{stack[0]} <- {stack[1]}" if len(stack) > 1 else stack[0]] += 1
        self.inclusive.update(set(stack))

    def install(self) -> None:
        """From the main thread: threads started from now on block SIGPROF."""
        original_run = threading.Thread.run
        self._original_run = original_run

        def run_without_sigprof(thread: threading.Thread) -> None:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPROF})
            original_run(thread)

        threading.Thread.run = run_without_sigprof  # type: ignore[method-assign,assignment]
        signal.signal(signal.SIGPROF, self.on_signal)
        signal.setitimer(signal.ITIMER_PROF, self.interval_s, self.interval_s)

    def uninstall(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)
        if self._original_run is not None:
            threading.Thread.run = self._original_run  # type: ignore[method-assign,assignment]
            self._original_run = None

    def report(self, top: int) -> str:
        lines = [f"event-loop samples: {self.busy} busy of {self.samples}"]
        sections = (
            ("inclusive", self.inclusive),
            ("exclusive", self.exclusive),
            ("exclusive, by caller", self.by_caller),
        )
        for title, counts in sections:
            lines.append(f"-- {title}")
            for where, count in counts.most_common(top):
                lines.append(f"{count:8d} {100 * count / max(1, self.busy):5.1f}% {where}")
        return "\n".join(lines) + "\n"


def sample_node(config: Path, out: Path, interval_s: float, top: int) -> int:
    sampler = LoopSampler(interval_s)
    sampler.install()
    try:
        status = node_main(config)
    finally:
        sampler.uninstall()
        out.write_text(sampler.report(top))
    print(f"event-loop samples: {sampler.busy} busy of {sampler.samples}, written to {out}")
    return int(status)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.node_sample")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--interval-ms", type=float, default=2.0)
    parser.add_argument("--top", type=int, default=150)
    args = parser.parse_args(argv)
    if not 0 < args.interval_ms <= 1000:
        parser.error("--interval-ms must be in (0, 1000]")
    return sample_node(args.config, args.out, args.interval_ms / 1000, args.top)


if __name__ == "__main__":
    sys.exit(main())
