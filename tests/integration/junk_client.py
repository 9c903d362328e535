"""A hand-written WebSocket client cheap enough to open thousands of junk peer
connections: each sends one message to a validator's peer port and waits for
the validator to close it (``send_junk``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import ssl

from ledger.identity import SigningIdentity
from node.peer_frames import Hello, encode_frame
from node.peer_protocol import PROTOCOL_VERSION

UPGRADE = (
    b"GET /veil/peer/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


def ws_message(payload: bytes, *, opcode: int = 0x2) -> bytes:
    """One masked client-to-server WebSocket frame (RFC 6455 section 5.2)."""
    mask = os.urandom(4)
    if len(payload) < 126:
        header = bytes([0x80 | opcode, 0x80 | len(payload)])
    else:
        header = bytes([0x80 | opcode, 0x80 | 126]) + len(payload).to_bytes(2, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def hello(identity: SigningIdentity, chain: bytes, rng: random.Random, tls: bool) -> bytes:
    return encode_frame(
        Hello(PROTOCOL_VERSION, chain, identity.public_key, rng.randbytes(32), bytes(16), tls)
    )


async def read_until_close_frame(reader: asyncio.StreamReader) -> None:
    """Skip the HTTP 101 head and server frames up to the server's close frame."""
    await reader.readuntil(b"\r\n\r\n")
    while True:
        head = await reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        await reader.readexactly(length)
        if head[0] & 0x0F == 0x8:
            return


async def send_junk(port: int, context: ssl.SSLContext | None, data: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        writer.write(UPGRADE + data)
        await writer.drain()
        async with asyncio.timeout(10):
            # Answer the validator's close, as any WebSocket client would, so
            # the flood is not paced by its close timeout.
            with contextlib.suppress(asyncio.IncompleteReadError):
                await read_until_close_frame(reader)
                writer.write(ws_message(b"\x03\xe8", opcode=0x8))
                await writer.drain()
            while await reader.read(4096):  # until the validator hangs up
                pass
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
