"""A fake node API for the chaos tool's unit tests: ``/v1/status`` and ``/v1/blocks/N`` of
a chain of ``TIP`` blocks, with the first requests answered late, as a loaded node does."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TIP = 3


def _status(height: int) -> dict[str, object]:
    return {
        "height": height,
        "view": 0,
        "primary": 0,
        "state_root": "ab" * 32,
        "last_commit_ms": None,
        "peers": [],
        "mempool_txs": 0,
        "mempool_bytes": 0,
        "catching_up": None,
        "stopped": False,
        "stop_reason": None,
        "wal_latched": False,
        "msm_backend": "python",
    }


def _block(height: int) -> dict[str, object]:
    tx = {"id": f"{height:064x}", "kind": "attest", "signer": None, "asset": None}
    return {
        "height": height,
        "hash": f"{height + 100:064x}",
        "genesis": False,
        "header": None,
        "txs": [tx],
        "certificate": None,
    }


class SlowNode(ThreadingHTTPServer):
    """Answers /v1/status and /v1/blocks/N; the first ``stalls`` requests only after
    ``stall_s`` (past the client's timeout), as a node on a machine at load 50 does."""

    daemon_threads = True

    def __init__(self, stalls: int = 0, stall_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stalls = stalls
        self.stall_s = stall_s
        self.requests = 0
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: SlowNode

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests += 1
            stall = self.server.requests <= self.server.stalls
        if stall:
            time.sleep(self.server.stall_s)
        if self.path == "/v1/status":
            body, code = _status(TIP), 200
        elif self.path.startswith("/v1/blocks/"):
            body, code = _block(int(self.path.rsplit("/", 1)[1])), 200
        else:
            body, code = {"error": {"code": "NOT_FOUND", "message": self.path}}, 404
        data = json.dumps(body).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up on this attempt already

    def log_message(self, format: str, *args: object) -> None:
        return


@contextlib.contextmanager
def running(server: SlowNode) -> Iterator[SlowNode]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
