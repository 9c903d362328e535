"""One validator's peer transport in its own process, for the junk-frame test.

Usage: python -m tests.integration.peer_junk_target CERT KEY CA, or ``plain``
Prints ``READY <port>``; each line on stdin prints the fault counts and the
Python heap that ``tracemalloc`` traces (``traced_bytes``, after a full
collection) as JSON; end of input stops it.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import logging
import sys
import tracemalloc
from pathlib import Path

from node.peer_config import PeerLinkConfig, PeerTlsFiles
from node.transport import PeerTransport
from tests.integration.peer_net import CHAIN, IDENTITIES, VALIDATORS

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc: RSS then includes freed pages the allocator keeps
    _LIBC = None


async def main(args: list[str]) -> None:
    tls = PeerTlsFiles(*(Path(a) for a in args[:3])) if args != ["plain"] else None
    config = PeerLinkConfig(
        listen_host="127.0.0.1",
        listen_port=0,
        peer_endpoints=("", "", "", ""),  # nobody to dial: it only takes junk
        tls=tls,
        allow_plain=tls is None,
    )
    transport = PeerTransport(config, IDENTITIES[0], CHAIN, VALIDATORS)
    await transport.start()
    print(f"READY {transport.listen_port}", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        del line
        gc.collect()
        if _LIBC is not None:  # hand freed pages back, so RSS shows what is still held
            _LIBC.malloc_trim(0)
        report = {f"{peer}/{kind.value}": n for (peer, kind), n in transport.fault_counts().items()}
        report["traced_bytes"] = tracemalloc.get_traced_memory()[0]
        print(json.dumps(report), flush=True)
    await transport.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)  # a fault per junk connection would flood stderr
    tracemalloc.start(1)
    asyncio.run(main(sys.argv[1:]))
