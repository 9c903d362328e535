"""A TCP relay that delays every byte by a latency with jitter: the ``latency`` scenario's
stand-in for ``tc netem delay`` on kernels built without ``sch_netem``.

Run inside a node's namespace (``python -m devnet.delay_relay --port P --delay-ms D
--jitter-ms J``); an nftables ``redirect`` there sends the node's outgoing peer
connections to it. It reads where each one was going (``SO_ORIGINAL_DST``),
connects there itself (its socket marked ``RELAY_MARK`` so the redirect skips
it), and forwards both directions, each chunk held until ``arrival + delay +
jitter`` and never before the chunk ahead of it (TCP keeps order).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import struct
import time

RELAY_MARK = 0x7E1A
SO_ORIGINAL_DST = 80
CHUNK_BYTES = 64 * 1024
MAX_BUFFERED_CHUNKS = 256


def original_destination(sock: socket.socket) -> tuple[str, int]:
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port = struct.unpack_from("!H", raw, 2)[0]
    return socket.inet_ntoa(raw[4:8]), port


class DelayRelay:
    def __init__(self, delay_ms: float, jitter_ms: float, seed: int) -> None:
        self.delay_s = delay_ms / 1000
        self.jitter_s = jitter_ms / 1000
        self.rng = random.Random(seed)

    def _latency_s(self) -> float:
        return max(0.0, self.rng.gauss(self.delay_s, self.jitter_s))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = writer.get_extra_info("socket")
        host, port = original_destination(client)
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, RELAY_MARK)
        upstream.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(upstream, (host, port))
            up_reader, up_writer = await asyncio.open_connection(sock=upstream)
        except OSError:
            upstream.close()
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(MAX_BUFFERED_CHUNKS)

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        sender = asyncio.get_running_loop().create_task(deliver())
        last_due = 0.0
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                last_due = max(last_due, time.monotonic() + self._latency_s())
                await queue.put((last_due, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()


async def serve(port: int, relay: DelayRelay) -> None:
    server = await asyncio.start_server(relay.handle, "0.0.0.0", port)  # noqa: S104 - in a test namespace
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, DelayRelay(args.delay_ms, args.jitter_ms, args.seed)))


if __name__ == "__main__":
    main()
