"""The node's CPU per round trip to its proof pool, against a bare pipe to a forked worker.

    python -m benchmarks.pool_roundtrip_cpu [--calls 2000]

A transfer's range proof goes to ``node.proof_pool.ProofPool`` in a batch
(about 15 a batch at 150 transfers/s with 40 ms batches). Here the pool
verifies an empty batch ``--calls`` times, and a bare ``multiprocessing`` pipe
read by the event loop (``add_reader``) carries the same empty list there and
back (pickling the statements themselves costs the same either way). Printed:
the parent's process CPU (every thread) and wall time per call, for each: what
the pool's own machinery costs the node per batch beyond the bare floor.
Until the ninth session the pool was a ``ProcessPoolExecutor``, whose
management and feeder threads cost about 640 us a call here; its workers now
answer over socket pairs the loop reads (docs/performance.md, "The proof pool
over sockets").
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import pickle
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection

from node.proof_pool import ProofPool


def _answer_forever(conn: Connection) -> None:
    """The bare worker: answer each pickled batch with an empty list, until b""."""
    while True:
        message = conn.recv_bytes()
        if not message:
            return
        pickle.loads(message)
        conn.send_bytes(pickle.dumps([]))


async def _through_pool(calls: int) -> tuple[float, float]:
    pool = ProofPool(1)
    try:
        await pool.verify([])  # the worker is up and warm before the clock starts
        cpu_s, wall_s = time.process_time(), time.perf_counter()
        for _ in range(calls):
            if await pool.verify([]) != []:
                raise AssertionError("an empty batch has no bad statement")
        return time.process_time() - cpu_s, time.perf_counter() - wall_s
    finally:
        pool.close()


async def _through_pipe(calls: int) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    ours, theirs = multiprocessing.Pipe()
    worker = multiprocessing.get_context("fork").Process(target=_answer_forever, args=(theirs,))
    worker.start()
    waiting: list[asyncio.Future[object]] = []

    def on_answer() -> None:
        waiting.pop(0).set_result(pickle.loads(ours.recv_bytes()))

    loop.add_reader(ours.fileno(), on_answer)
    try:
        cpu_s, wall_s = time.process_time(), time.perf_counter()
        for _ in range(calls):
            answer: asyncio.Future[object] = loop.create_future()
            waiting.append(answer)
            ours.send_bytes(pickle.dumps([]))
            if await answer != []:
                raise AssertionError("the bare worker answers an empty list")
        return time.process_time() - cpu_s, time.perf_counter() - wall_s
    finally:
        loop.remove_reader(ours.fileno())
        ours.send_bytes(b"")
        worker.join(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pool_roundtrip_cpu")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be positive")
    for name, run in (("ProofPool", _through_pool), ("bare pipe", _through_pipe)):
        cpu_s, wall_s = asyncio.run(run(args.calls))
        print(
            f"{name:10s} parent CPU {cpu_s / args.calls * 1e6:8.1f} us/call, "
            f"wall {wall_s / args.calls * 1e6:8.1f} us/call"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
