"""A running node's CPU per HTTP request: ``POST /v1/txs:batch`` of committed txs
(duplicates) against ``GET /v1/status`` as the baseline of a request.

    python -m benchmarks.submit_cpu --url http://127.0.0.1:8702 --pid PID \\
        [--requests 1500] [--batch 64] [--rounds 3]

Reads the node's CPU (user + system, every thread) from ``/proc/PID/stat``
before and after each run of requests, sent one at a time over one keep-alive
connection, and prints the median over ``--rounds`` of CPU per request and,
for the batches, per tx above the baseline. The duplicates are the txs of the
node's latest block (repeated up to ``--batch``): what a client's resubmission
costs the node (decode, the id look-ups, the answer), with no admission or
gossip after it, so a run changes nothing on the chain. The node must be one
this machine can read (``/proc``); compare two revisions by restarting the same
node on each in turn, as docs/performance.md records.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import msgpack

from ledger.block import decode_block

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads) from ``/proc``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


async def latest_txs(session: aiohttp.ClientSession, url: str, count: int) -> list[bytes]:
    """``count`` encoded txs (repeated if the block holds fewer) of the newest non-empty
    block at or below the node's tip."""
    async with session.get(f"{url}/v1/status") as response:
        height = int((await response.json())["height"])
    while height > 0:
        async with session.get(f"{url}/v1/blocks/{height}", params={"format": "raw"}) as response:
            block = decode_block(await response.read())
        if block.txs:
            txs = [tx.encode() for tx in block.txs]
            return [txs[i % len(txs)] for i in range(count)]
        height -= 1
    raise SystemExit("the node holds no block with a tx: run some load first")


async def cpu_per_request_us(
    session: aiohttp.ClientSession, url: str, pid: int, requests: int, body: bytes | None
) -> float:
    before = process_cpu_s(pid)
    for _ in range(requests):
        if body is None:
            async with session.get(f"{url}/v1/status") as response:
                await response.read()
        else:
            async with session.post(
                f"{url}/v1/txs:batch",
                data=body,
                headers={"Content-Type": "application/msgpack"},
            ) as response:
                if response.status != 200:
                    raise SystemExit(
                        f"txs:batch answered {response.status}: {await response.text()}"
                    )
                await response.read()
    return (process_cpu_s(pid) - before) * 1e6 / requests


async def run(url: str, pid: int, requests: int, batch: int, rounds: int) -> None:
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        body = msgpack.packb(await latest_txs(session, url, batch))
        status_us: list[float] = []
        batch_us: list[float] = []
        for _ in range(rounds):
            status_us.append(await cpu_per_request_us(session, url, pid, requests, None))
            batch_us.append(await cpu_per_request_us(session, url, pid, requests, body))
    status_median = statistics.median(status_us)
    batch_median = statistics.median(batch_us)
    print(f"GET /v1/status: {status_median:.0f} us of node CPU per request (rounds {status_us})")
    print(
        f"POST /v1/txs:batch of {batch} duplicates: {batch_median:.0f} us per request, "
        f"{(batch_median - status_median) / batch:.1f} us per tx above a status request "
        f"(rounds {[round(v) for v in batch_us]}; load average {os.getloadavg()[0]:.1f})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.submit_cpu")
    parser.add_argument("--url", required=True, help="the node's API, http://host:port")
    parser.add_argument("--pid", type=int, required=True, help="the node's process id")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.rounds < 1 or not 1 <= args.batch <= 256:
        parser.error("--requests and --rounds must be positive, --batch 1 to 256")
    asyncio.run(run(args.url.rstrip("/"), args.pid, args.requests, args.batch, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
