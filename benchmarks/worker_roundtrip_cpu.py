"""The node's CPU per round trip to its worker thread, against ``run_in_executor``.

    python -m benchmarks.worker_roundtrip_cpu [--calls 3000] [--rounds 5]

The runtime hands every WAL append and every block's execution to one worker
thread (``node.serial_worker.SerialWorker``) and awaits it: several round
trips a block. Here both ways run an empty call ``--calls`` times, alternating
for ``--rounds`` rounds: ``SerialWorker.run``, and ``loop.run_in_executor`` on
a one-thread ``ThreadPoolExecutor`` (what the node used until the tenth
session), and the floor under both: a bare ping-pong of one byte with a thread
over a socket pair (two wake-ups, no event loop work). Printed: the medians
over the rounds of the process CPU (both threads) and of the event loop
thread's own CPU per call, and the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from node.serial_worker import SerialWorker

Round = tuple[float, float, float]
"""Process CPU, loop-thread CPU and wall seconds per call."""


def _nothing() -> None:
    return None


async def _timed(call: Callable[[], Awaitable[None]], calls: int) -> Round:
    await call()  # the thread is up before the clock starts
    cpu_s, thread_s, wall_s = time.process_time(), time.thread_time(), time.perf_counter()
    for _ in range(calls):
        await call()
    return (
        (time.process_time() - cpu_s) / calls,
        (time.thread_time() - thread_s) / calls,
        (time.perf_counter() - wall_s) / calls,
    )


async def _through_serial_worker(calls: int) -> Round:
    worker = SerialWorker()
    try:
        return await _timed(lambda: worker.run(_nothing), calls)
    finally:
        worker.close()


async def _through_executor(calls: int) -> Round:
    executor = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()
    try:
        return await _timed(lambda: loop.run_in_executor(executor, _nothing), calls)
    finally:
        executor.shutdown(wait=True)


def _echo(sock: socket.socket) -> None:
    while byte := sock.recv(1):
        sock.sendall(byte)


async def _through_bare_thread(calls: int) -> Round:
    ours, theirs = socket.socketpair()
    echo = threading.Thread(target=_echo, args=(theirs,))
    echo.start()

    async def ping() -> None:
        ours.sendall(b"x")
        if ours.recv(1) != b"x":
            raise AssertionError("the echo thread answers the byte it got")

    try:
        return await _timed(ping, calls)
    finally:
        ours.close()
        echo.join()
        theirs.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker_roundtrip_cpu")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.rounds < 1:
        parser.error("--calls and --rounds must be positive")
    ways: dict[str, Callable[[int], Coroutine[Any, Any, Round]]] = {
        "SerialWorker": _through_serial_worker,
        "run_in_executor": _through_executor,
        "bare thread": _through_bare_thread,
    }
    results: dict[str, list[Round]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, way in ways.items():
            results[name].append(asyncio.run(way(args.calls)))
    for name, rounds in results.items():
        cpu, loop_thread, wall = (statistics.median(r[i] for r in rounds) * 1e6 for i in range(3))
        print(
            f"{name:16s} process CPU {cpu:7.1f} us/call, loop thread {loop_thread:7.1f} us/call, "
            f"wall {wall:7.1f} us/call (medians of {args.rounds})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
