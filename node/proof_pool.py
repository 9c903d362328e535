"""Range proofs verified off the event loop: a process pool whose workers warm up once.

A batch verification is seconds of CPU for a big batch; the event loop must
not wait on it (issue 9: nothing blocks the loop). Each worker process
builds the generator tables of every proof shape a tx may carry when it
starts (``warm_generators``), so no request pays that cost.

``ProofVerifier`` is what the runtime awaits: ``batch_verify``'s contract
(the indices of the bad statements) as a coroutine. ``inline_verifier`` is
the same check on the loop itself, for tests that want no processes.

Workers die with the node. They are forked from it (the "fork" context,
pinned so the node stays their parent on any Python), so they hold copies of
its listening sockets: a worker that outlived a SIGKILLed node kept its ports
and the restarted node could not listen. Each worker, as it starts, asks
Linux to SIGKILL it when its parent dies (``prctl(PR_SET_PDEATHSIG)``, via
ctypes), checks the parent is still the node (it may have died before the
call), and starts a thread that exits the worker once its parent pid
changes (within ``PARENT_POLL_S``; the fallback where prctl is missing).

A worker that dies (the OOM killer, a crash, an operator's signal) once
broke the pool for good: every later batch raised ``BrokenProcessPool``, so
the node answered every confidential tx "busy" until it was restarted, while
it looked healthy. The pool now starts a new worker when it finds one dead,
retries that batch once on it, and counts the restart (``restarts``,
``veil_proof_pool_restarts_total``).

Each worker is a forked ``multiprocessing.Process`` with a socket pair of its
own, not a ``ProcessPoolExecutor``: see ``ProofPool``.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures.process import BrokenProcessPool

from ledger.tx import MAX_OUTPUTS, RANGE_BITS
from privacy.generators import bulletproof_generators
from privacy.rangeproof import RangeStatement, batch_verify

ProofVerifier = Callable[[Sequence[RangeStatement]], Awaitable[list[int]]]

log = logging.getLogger("veil.node.proof_pool")

PR_SET_PDEATHSIG = 1
"""``<linux/prctl.h>``: the signal a process gets when its parent dies."""
PARENT_POLL_S = 1.0


def warm_generators() -> None:
    """Build the generator tables for every aggregation size a tx may use."""
    parties = 1
    while parties <= MAX_OUTPUTS:
        bulletproof_generators(RANGE_BITS, parties)
        parties *= 2


def die_with_parent(parent_pid: int) -> None:
    """In a worker: be killed when ``parent_pid`` dies (see the module docstring)."""
    ask_kernel_to_kill_with_parent()
    if os.getppid() != parent_pid:  # the node died before the request took effect
        os._exit(1)
    start_parent_watch(parent_pid)


def ask_kernel_to_kill_with_parent() -> bool:
    """Linux: SIGKILL this process when its parent dies; False where that is missing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def start_parent_watch(parent_pid: int) -> None:
    """A daemon thread that exits this process once its parent is no longer ``parent_pid``."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="veil-parent-watch", daemon=True).start()


FRAME_HEADER_BYTES = 4
"""A frame on a worker's socket: a 4-byte big-endian length, then a pickle."""
CLOSE_JOIN_S = 5.0


def _frame(payload: object) -> bytes:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(FRAME_HEADER_BYTES, "big") + data


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    """``size`` bytes from a blocking socket, or None at its end."""
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _serve(sock: socket.socket, inherited: list[socket.socket], parent_pid: int) -> None:
    """A worker: answer each batch with ``batch_verify``'s indices, until the node
    closes its end (or dies: then the kernel or the watch ends this process)."""
    for other in inherited:  # the node's ends: each worker must see its node close
        other.close()
    die_with_parent(parent_pid)
    warm_generators()
    try:
        _answer_batches(sock)
    except (BrokenPipeError, ConnectionResetError):
        # The node closed its end while this worker verified (a halt, a
        # shutdown): nobody waits for the answer, and a traceback in the node's
        # log would read as a crash.
        return


def _answer_batches(sock: socket.socket) -> None:
    while True:
        header = _read_exactly(sock, FRAME_HEADER_BYTES)
        data = None if header is None else _read_exactly(sock, int.from_bytes(header, "big"))
        if data is None:
            return
        # S301: the other end is the node that forked us; nothing else holds the pair.
        statements = pickle.loads(data)  # noqa: S301
        try:
            answer: tuple[bool, object] = (True, batch_verify(statements))
        except Exception as exc:  # the node's batch fails, this worker lives on
            answer = (False, f"{type(exc).__name__}: {exc}")
        sock.sendall(_frame(answer))


class ProofWorkerError(RuntimeError):
    """The worker raised while verifying a batch (``batch_verify`` should not)."""


class _Worker:
    """One forked process and the node's end of its socket, read by the event loop.

    Answers come back in the order batches were sent, so each one settles the
    oldest pending future. A send is one ``sock_sendall`` under a lock, so two
    batches' bytes never interleave, and it never blocks the loop on a busy worker.
    """

    def __init__(self, parent_pid: int, inherited: list[socket.socket]) -> None:
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context("fork")
        self.process = context.Process(
            target=_serve,
            args=(theirs, [ours, *inherited], parent_pid),
            name="veil-proof-worker",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        ours.setblocking(False)
        self.sock = ours
        self.pending: deque[asyncio.Future[list[int]]] = deque()
        self.broken = False
        self._buffer = bytearray()
        self._send_lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def usable(self) -> bool:
        return not self.broken and self.process.is_alive()

    async def call(self, batch: list[RangeStatement]) -> list[int]:
        if self.broken:
            raise BrokenProcessPool("the proof worker died")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            loop.add_reader(self.sock.fileno(), self._on_readable)
            self._loop = loop
        frame = _frame(batch)
        answer: asyncio.Future[list[int]] = loop.create_future()
        async with self._send_lock:
            if self.broken:  # it died while this batch waited for the lock
                raise BrokenProcessPool("the proof worker died")
            self.pending.append(answer)
            try:
                await loop.sock_sendall(self.sock, frame)
            except OSError:
                self._break()
            except asyncio.CancelledError:
                self._break()  # a frame cut short leaves the stream unreadable
                raise
        return await answer

    def _on_readable(self) -> None:
        try:
            chunk = self.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._break()
            return
        buffer = self._buffer
        buffer += chunk
        while len(buffer) >= FRAME_HEADER_BYTES:
            end = FRAME_HEADER_BYTES + int.from_bytes(buffer[:FRAME_HEADER_BYTES], "big")
            if len(buffer) < end:
                return
            # S301: from the worker this node forked; nothing else holds the pair.
            ok, result = pickle.loads(buffer[FRAME_HEADER_BYTES:end])  # noqa: S301
            del buffer[:end]
            future = self.pending.popleft()
            if future.done():
                continue
            if ok:
                future.set_result(result)
            else:
                future.set_exception(ProofWorkerError(str(result)))

    def _break(self) -> None:
        """The worker is gone: fail what waits on it, and let go of its socket."""
        if self.broken:
            return
        self.broken = True
        self._detach()
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(BrokenProcessPool("the proof worker died"))

    def _detach(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.sock.fileno())
        self._loop = None
        self.sock.close()

    def close(self) -> None:
        """Close the node's end (the worker reads its end and exits), then reap it.
        Batches still waiting on it fail (``BrokenProcessPool``) rather than hang."""
        self._break()
        self.process.join(CLOSE_JOIN_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class ProofPool:
    """``workers`` processes verifying batches of range statements.

    Each worker has a socket pair of its own, read by the event loop
    (``loop.add_reader``). A ``ProcessPoolExecutor`` did this through a
    management thread and a feeder thread, which cost the node about 640 us of
    CPU a round trip against about 110 us now (``python -m
    benchmarks.pool_roundtrip_cpu``; docs/performance.md).
    """

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"proof workers must be a positive int, got {workers!r}")
        self._parent_pid = os.getpid()
        self._workers: list[_Worker] = []
        for _ in range(workers):
            self._workers.append(self._new_worker())
        self.restarts = 0

    def _new_worker(self) -> _Worker:
        return _Worker(self._parent_pid, [worker.sock for worker in self._workers])

    def _pick(self) -> _Worker:
        """The least busy worker, after replacing any that died."""
        for index, worker in enumerate(self._workers):
            if not worker.usable():
                self.restarts += 1
                log.error("a proof worker died: starting a new one (restart %d)", self.restarts)
                worker.close()
                self._workers[index] = self._new_worker()
        return min(self._workers, key=lambda worker: len(worker.pending))

    async def verify(self, statements: Sequence[RangeStatement]) -> list[int]:
        """``batch_verify`` in a worker; if that worker dies, once more on a new one
        (a batch that itself kills its worker then raises ``BrokenProcessPool``)."""
        batch = list(statements)
        try:
            return await self._pick().call(batch)
        except BrokenProcessPool:
            pass
        return await self._pick().call(batch)

    def close(self) -> None:
        for worker in self._workers:
            worker.close()


async def inline_verifier(statements: Sequence[RangeStatement]) -> list[int]:
    return batch_verify(statements)
