"""Peer transport: aiohttp WebSockets between validators, over mutual TLS.

This is the asyncio shell around ``node.peer_protocol.Connection``, the way
httpcore wraps ``h11.Connection``: it moves bytes, owns the clock and the
randomness (nonces, boot id, back-off jitter), and turns every protocol fault
into a counted fault and a close, never an exception in the runtime.

What the runtime gets:

* ``send(peer, frame)`` / ``broadcast(frame)`` / ``request_batch`` /
  ``request_blocks``: never block; each peer has a bounded outbound queue that
  drops its *oldest* entry when full (counted per peer in ``drop_counts``).
  Newer consensus messages supersede older ones and the core retransmits, so
  the freshest traffic is what a peer that comes back needs; a dead peer can
  never hold more than ``queue_max_frames`` / ``queue_max_bytes``.
* ``receive()`` or ``async for peer, frame in transport``: frames from
  authenticated peers only. The inbound queue is bounded and a full one stops
  reading the sockets (TCP back-pressure), so nothing is dropped silently.
* ``connected_peers()``, ``fault_counts()``, ``drop_counts()`` for status and
  metrics.

Links: every node dials every peer it has no session with, with jittered
exponential back-off (reset only by a session that outlived a heartbeat
interval), so peers may start in any order; the higher index of a
pair waits ``dial_grace_ms`` first, so the lower one's dial usually makes the
only session and a one-way firewall still lets the pair meet. If two sessions end up
between the same pair, both sides keep the same one: the newer if the peer's
boot id changed (it restarted) or if one side dialed both, else the one dialed
by the lower validator index.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import secrets
import ssl
from collections import Counter, deque
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from consensus.invariants import invariant
from ledger.identity import SigningIdentity
from node.logging import http_server_log
from node.peer_config import (
    PEER_PATH,
    QUARANTINE_FAULTS,
    QUARANTINE_FORGET_MS,
    PeerLinkConfig,
    backoff_delay_ms,
    quarantine_ms,
    split_endpoint,
)
from node.peer_frames import (
    BOOT_ID_BYTES,
    LENGTH_PREFIX_BYTES,
    NONCE_BYTES,
    BatchReply,
    BlocksReply,
    ConsensusFrame,
    Frame,
    PeerFault,
    TxFrame,
    TxsFrame,
)
from node.peer_protocol import (
    MAX_PENDING_REQUESTS,
    PLAIN_CHANNEL_BINDING,
    Authenticated,
    Connection,
    LocalPeer,
    NonceMemory,
    ProtocolFault,
    RemoteRefused,
    Role,
    tls_channel_binding,
)
from node.tls import certificate_der, client_context, server_context

log = logging.getLogger("veil.node.transport")

CLOSE_REPLACED = 4001
"""WebSocket close code for a session dropped by the one-session-per-pair rule."""
CLOSE_WRITER_FAILED = 4002
"""Our writer could not send: the session is closed so that the link is dialled again."""
CLOSE_QUARANTINED = 4003
"""The member sent what only a misbehaving member sends; refused for a while (``quarantine``)."""

CLOSE_TIMEOUT_S = 1.0
"""How long a close waits for the peer's close frame before dropping the socket."""

_FRAME_OVERHEAD_BYTES = 64


@dataclass(frozen=True, slots=True)
class _BatchFetch:
    digest: bytes


@dataclass(frozen=True, slots=True)
class _BlocksFetch:
    first_height: int
    last_height: int
    max_bytes: int


_Outgoing = Frame | _BatchFetch | _BlocksFetch


def _size_bytes(item: _Outgoing) -> int:
    """What an item will cost on the wire, near enough to bound a queue."""
    if isinstance(item, ConsensusFrame):
        body = len(item.payload)
    elif isinstance(item, TxFrame):
        body = len(item.tx)
    elif isinstance(item, TxsFrame):
        body = sum(len(tx) for tx in item.txs)
    elif isinstance(item, BatchReply):
        body = len(item.batch or b"")
    elif isinstance(item, BlocksReply):
        body = sum(len(block) for block in item.blocks)
    else:
        body = 0
    return body + _FRAME_OVERHEAD_BYTES


class _OutboundQueue:
    """A per-peer FIFO bounded in count and bytes that drops its oldest entries."""

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self._items: deque[tuple[_Outgoing, int]] = deque()
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self.queued_bytes = 0
        self.ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item: _Outgoing) -> int:
        """Queue ``item``; return how many older items were dropped to make room."""
        size = _size_bytes(item)
        dropped = 0
        while self._items and (
            len(self._items) >= self._max_frames or self.queued_bytes + size > self._max_bytes
        ):
            _, old_size = self._items.popleft()
            self.queued_bytes -= old_size
            dropped += 1
        self._items.append((item, size))
        self.queued_bytes += size
        self.ready.set()
        return dropped

    def push_front(self, item: _Outgoing) -> None:
        """Put back an item a replaced session took but did not send."""
        size = _size_bytes(item)
        self._items.appendleft((item, size))
        self.queued_bytes += size
        self.ready.set()

    def pop(self) -> _Outgoing | None:
        if not self._items:
            self.ready.clear()
            return None
        item, size = self._items.popleft()
        self.queued_bytes -= size
        return item


_WebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


@dataclass(eq=False)
class _Session:
    """One authenticated WebSocket to a peer."""

    peer_index: int
    peer_boot_id: bytes
    dialer_index: int
    ws: _WebSocket
    connection: Connection
    authenticated_at: float
    """Event-loop time of the handshake: how long the session lasted decides the back-off."""


@dataclass(eq=False)
class _PeerLink:
    index: int
    endpoint: str
    queue: _OutboundQueue
    session: _Session | None = None
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    quarantined_until: float = 0.0
    """Event-loop time until which the member is refused and not dialed."""
    offences: int = 0
    last_offence: float = float("-inf")


def _failures_after(failures: int, session_s: float | None, stable_s: float) -> int:
    """The dial loop's failure count after one dial that kept a session up ``session_s``
    (``None``: none authenticated). Only a session that lasted ``stable_s`` resets it:
    a member that authenticates and hangs up at once would else be redialed, with a
    TLS handshake and two signatures each time, every ``reconnect_initial_ms``."""
    if session_s is not None and session_s >= stable_s:
        return 0
    return failures + 1


def _new_session_wins(old: _Session, new: _Session) -> bool:
    """The one-session-per-pair rule; both ends reach the same answer."""
    if old.peer_boot_id != new.peer_boot_id:
        return True  # the peer restarted: its old session is dead
    if old.dialer_index != new.dialer_index:
        return new.dialer_index < old.dialer_index
    return True  # the same side dialed again: it gave up on the old one


class PeerTransport:
    """Authenticated links from this validator to every other one."""

    def __init__(
        self,
        config: PeerLinkConfig,
        identity: SigningIdentity,
        chain_id: bytes,
        validators: tuple[bytes, ...],
        *,
        rng: random.Random | None = None,
    ) -> None:
        if len(config.peer_endpoints) != len(validators):
            raise ValueError("peer_endpoints needs one entry per validator")
        self.config = config
        self.local = LocalPeer(identity, chain_id, validators, secrets.token_bytes(BOOT_ID_BYTES))
        self.index = self.local.index
        # Jitter only: nonces and the boot id always come from the OS (secrets).
        self._rng = rng if rng is not None else random.SystemRandom()
        self._links = {
            i: _PeerLink(
                i, endpoint, _OutboundQueue(config.queue_max_frames, config.queue_max_bytes)
            )
            for i, endpoint in enumerate(config.peer_endpoints)
            if i != self.index
        }
        for link in self._links.values():
            link.idle.set()
        self._inbound: asyncio.Queue[tuple[int, Frame]] = asyncio.Queue(config.inbound_queue_frames)
        self._faults: Counter[tuple[int | None, PeerFault]] = Counter()
        self._drops: Counter[int] = Counter()
        self._nonces = NonceMemory()
        self._tasks: set[asyncio.Task[object]] = set()
        self._sessions: set[_Session] = set()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._server_ssl: ssl.SSLContext | None = None
        self._client_ssl: ssl.SSLContext | None = None
        self._own_certificate: bytes | None = None
        self._bound_port: int | None = None
        self._stopping = False
        self._handshaking = 0

    # --- life cycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Listen on the peer port and start dialing; raises ``OSError`` if the port is taken,
        ``TlsFileError`` if a TLS file cannot be read."""
        tls = self.config.tls
        if tls is not None:
            self._server_ssl = server_context(tls)
            self._client_ssl = client_context(tls)
            self._own_certificate = certificate_der(tls.cert_file)
        else:
            log.warning(
                "peer links are PLAIN (allow_plain): traffic is readable on the network "
                "and authenticated sessions can be relayed"
            )
        app = web.Application(client_max_size=1024)
        app.router.add_get(PEER_PATH, self._accept)
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=1,
            logger=http_server_log("veil.node.transport.http"),
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self.config.listen_host,
            self.config.listen_port,
            ssl_context=self._server_ssl,
            # Lets a restarted node rebind past TIME_WAIT; on Linux a second
            # listener on the port is still refused, so "port in use" fails fast.
            reuse_address=True,
        )
        await site.start()
        addresses = self._runner.addresses  # the bound port, when configured as 0 (tests)
        self._bound_port = int(addresses[0][1]) if addresses else self.config.listen_port
        self._client = aiohttp.ClientSession()
        for link in self._links.values():
            if link.endpoint:
                self._spawn(self._dial_loop(link))
        log.info(
            "peer transport of validator %d listening on %s:%d (%s)",
            self.index,
            self.config.listen_host,
            self._bound_port,
            "tls" if tls is not None else "PLAIN",
        )

    async def stop(self) -> None:
        """Close every link and stop listening."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        for session in list(self._sessions):
            with contextlib.suppress(Exception):
                await session.ws.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    async def __aenter__(self) -> PeerTransport:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def listen_port(self) -> int:
        invariant(self._bound_port is not None, "listen_port before start()")
        return self._bound_port or 0

    # --- the runtime's side -------------------------------------------------------

    def send(self, peer: int, frame: Frame) -> None:
        """Queue ``frame`` for validator ``peer``; never blocks."""
        self._enqueue(peer, frame)

    def broadcast(self, frame: Frame) -> None:
        for peer in self._links:
            self._enqueue(peer, frame)

    def request_batch(self, peer: int, digest: bytes) -> None:
        """Ask ``peer`` for a batch; the ``BatchReply`` arrives through ``receive``."""
        self._enqueue(peer, _BatchFetch(digest))

    def request_blocks(
        self, peer: int, first_height: int, last_height: int, max_bytes: int
    ) -> None:
        """Ask ``peer`` for blocks; the ``BlocksReply`` (a prefix) arrives through ``receive``."""
        invariant(1 <= first_height <= last_height, "empty or inverted block range")
        self._enqueue(peer, _BlocksFetch(first_height, last_height, max_bytes))

    async def receive(self) -> tuple[int, Frame]:
        """The next ``(peer_index, frame)`` from an authenticated peer."""
        return await self._inbound.get()

    def __aiter__(self) -> AsyncIterator[tuple[int, Frame]]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[tuple[int, Frame]]:
        while True:
            yield await self._inbound.get()

    def connected_peers(self) -> frozenset[int]:
        return frozenset(i for i, link in self._links.items() if link.session is not None)

    def fault_counts(self) -> dict[tuple[int | None, PeerFault], int]:
        """Faults by (peer index, kind); ``None`` for a peer not yet identified."""
        return dict(self._faults)

    def drop_counts(self) -> dict[int, int]:
        """Outbound items dropped per peer because its queue was full."""
        return dict(self._drops)

    def queued(self, peer: int) -> int:
        return len(self._links[peer].queue)

    def quarantine(self, peer: int, reason: str) -> None:
        """Refuse validator ``peer`` for a while: it sent, over an authenticated session,
        what only a misbehaving member sends (a frame or consensus payload that does
        not decode, gossip refused for its bytes alone). Its session is closed, its
        handshakes are refused and it is not dialed until the period ends: one
        second, doubling with each offence up to five minutes
        (``node.peer_config.quarantine_ms``). Frames it sent before are dropped
        unread (``is_quarantined``)."""
        link = self._links.get(peer)
        invariant(link is not None, f"no peer link {peer}")
        if link is None:
            return
        now = asyncio.get_running_loop().time()
        if now < link.quarantined_until:
            return  # one offence per period: frames already queued are not new ones
        if now - link.last_offence > QUARANTINE_FORGET_MS / 1000:
            link.offences = 0
        link.offences += 1
        link.last_offence = now
        period_s = quarantine_ms(link.offences) / 1000
        link.quarantined_until = now + period_s
        log.warning(
            "v%d: peer %d quarantined for %.0f s (offence %d): %s",
            self.index,
            peer,
            period_s,
            link.offences,
            reason,
        )
        if link.session is not None:
            self._spawn(link.session.ws.close(code=CLOSE_QUARANTINED, message=b"quarantined"))

    def is_quarantined(self, peer: int) -> bool:
        link = self._links.get(peer)
        return link is not None and asyncio.get_running_loop().time() < link.quarantined_until

    def _enqueue(self, peer: int, item: _Outgoing) -> None:
        invariant(peer in self._links, f"no peer link {peer}")
        dropped = self._links[peer].queue.push(item)
        if dropped:
            self._drops[peer] += dropped

    # --- faults ---------------------------------------------------------------------

    def _fault(self, peer: int | None, fault: PeerFault, detail: str) -> None:
        self._faults[(peer, fault)] += 1
        log.warning(
            "v%d: peer fault: peer=%s kind=%s detail=%s", self.index, peer, fault.value, detail
        )

    # --- dialing and accepting -------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _url(self, endpoint: str) -> str:
        split = split_endpoint(endpoint)
        invariant(split is not None, f"endpoint {endpoint!r} passed the config check")
        host, port = split if split is not None else ("", 0)
        if ":" in host:
            host = f"[{host}]"
        scheme = "wss" if self.config.tls is not None else "ws"
        return f"{scheme}://{host}:{port}{PEER_PATH}"

    async def _dial_loop(self, link: _PeerLink) -> None:
        url = self._url(link.endpoint)
        failures = 0
        # A session that outlived a ping interval was a working link.
        stable_s = self.config.heartbeat_ms / 1000
        while not self._stopping:
            await link.idle.wait()
            wait_s = link.quarantined_until - asyncio.get_running_loop().time()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
                continue
            if self.index > link.index:
                # The lower index dials first, so both rarely dial at once:
                # frames sent on a duplicate that the tie-break drops are lost.
                await asyncio.sleep(self.config.dial_grace_ms / 1000)
                if not link.idle.is_set():
                    continue
            session_s: float | None
            try:
                session_s = await self._dial_once(link, url)
            except Exception:
                # Unforeseen (a bug, an aiohttp surprise): this task is nobody's
                # child, so raising would end dialing this peer for good, unseen.
                log.exception("v%d: dialing %d failed unexpectedly", self.index, link.index)
                session_s = None
            failures = _failures_after(failures, session_s, stable_s)
            delay_ms = backoff_delay_ms(
                failures,
                initial_ms=self.config.reconnect_initial_ms,
                max_ms=self.config.reconnect_max_ms,
                draw=self._rng.random(),
            )
            await asyncio.sleep(delay_ms / 1000)

    async def _dial_once(self, link: _PeerLink, url: str) -> float | None:
        """Seconds the dialed session stayed up, ``None`` if none authenticated."""
        invariant(self._client is not None, "dialing before start()")
        if self._client is None:
            return None
        try:
            ws = await self._client.ws_connect(
                url,
                ssl=self._client_ssl if self._client_ssl is not None else False,
                # No permessage-deflate: our frames (signatures, hashes, tx bytes) do
                # not compress, and a few KiB must not inflate to a whole frame.
                compress=0,
                max_msg_size=self.config.max_frame_bytes + LENGTH_PREFIX_BYTES,
                heartbeat=self.config.heartbeat_ms / 1000,
                timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT_S),
                autoping=True,
            )
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            self._fault(link.index, PeerFault.TLS_FAILED, type(exc).__name__)
            return None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.debug("v%d: dial %d failed: %s", self.index, link.index, exc)
            return None
        try:
            binding = self._binding(ws, Role.DIALER)
            return await self._run(ws, Role.DIALER, link.index, binding)
        finally:
            await ws.close()

    async def _accept(self, request: web.Request) -> web.StreamResponse:
        if self._handshaking >= self.config.max_pending_handshakes:
            # Bounds what unauthenticated sockets can hold; real peers retry.
            self._fault(None, PeerFault.TOO_MANY_HANDSHAKES, request.remote or "?")
            return web.Response(status=503)
        ws = web.WebSocketResponse(
            # No permessage-deflate (aiohttp offers it by default): ~16 KiB of deflate
            # from a peer not yet authenticated would inflate to a 16 MiB message.
            compress=False,
            # aiohttp fixes this at the upgrade, with no public way to raise it after
            # the handshake: until then a socket may make us buffer one whole frame
            # (docs/operations.md, "Frames and limits", states the total bound).
            max_msg_size=self.config.max_frame_bytes + LENGTH_PREFIX_BYTES,
            heartbeat=self.config.heartbeat_ms / 1000,
            autoping=True,
            timeout=CLOSE_TIMEOUT_S,  # a hostile peer never answers our close
        )
        # The slot is taken before prepare(), which may yield: upgrades arriving
        # meanwhile would all pass the check above. _run takes it over with no await
        # between.
        self._handshaking += 1
        try:
            await ws.prepare(request)
        finally:
            self._handshaking -= 1
        try:
            await self._run(ws, Role.LISTENER, None, self._binding(ws, Role.LISTENER))
        finally:
            await ws.close()
        return ws

    def _binding(self, ws: _WebSocket, role: Role) -> bytes | None:
        if self._own_certificate is None:
            return PLAIN_CHANNEL_BINDING
        ssl_object = ws.get_extra_info("ssl_object")
        peer_certificate = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        if not peer_certificate:
            return None
        if role is Role.DIALER:
            return tls_channel_binding(self._own_certificate, peer_certificate)
        return tls_channel_binding(peer_certificate, self._own_certificate)

    # --- one session ------------------------------------------------------------------

    async def _run(
        self, ws: _WebSocket, role: Role, expected_peer: int | None, binding: bytes | None
    ) -> float | None:
        """Handshake, then relay frames until the socket closes; how many seconds the
        session was up, ``None`` if it never authenticated."""
        if binding is None:
            self._fault(expected_peer, PeerFault.TLS_FAILED, "no peer certificate")
            return None
        connection = Connection(
            self.local,
            role=role,
            nonce=secrets.token_bytes(NONCE_BYTES),
            channel_binding=binding,
            tls=self.config.tls is not None,
            expected_peer=expected_peer,
            nonce_memory=self._nonces,
            max_frame_bytes=self.config.max_frame_bytes,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.handshake_timeout_ms / 1000
        session: _Session | None = None
        writer: asyncio.Task[None] | None = None

        def up_s() -> float | None:
            return None if session is None else loop.time() - session.authenticated_at

        self._handshaking += 1
        handshaking = True
        try:
            await ws.send_bytes(connection.start())
            while True:
                peer = connection.peer_index if connection.peer_index is not None else expected_peer
                timeout = None if session else deadline - loop.time()
                try:
                    if timeout is not None and timeout <= 0:
                        raise TimeoutError
                    message = await ws.receive(timeout=timeout)
                except TimeoutError:
                    self._fault(peer, PeerFault.HANDSHAKE_TIMEOUT, "no handshake in time")
                    return None
                if message.type is aiohttp.WSMsgType.BINARY:
                    connection.receive_data(message.data)
                    # Our Auth or Refused, before the events: a peer's Hello and
                    # Auth may arrive in one message, and our Auth must still go.
                    pending = connection.data_to_send()
                    if pending:
                        await ws.send_bytes(pending)
                elif message.type is aiohttp.WSMsgType.TEXT:
                    self._fault(peer, PeerFault.MALFORMED_FRAME, "a text message")
                    if session is not None:
                        self.quarantine(session.peer_index, "a text message")
                    return up_s()
                elif message.type is aiohttp.WSMsgType.ERROR:
                    code = getattr(message.data, "code", None)
                    fault = (
                        PeerFault.OVERSIZE_FRAME
                        if code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
                        else PeerFault.CONNECTION_LOST
                    )
                    self._fault(peer, fault, str(message.data))
                    return up_s()
                else:  # CLOSE, CLOSING, CLOSED: the peer hung up
                    return up_s()
                while (event := connection.next_event()) is not None:
                    if isinstance(event, Authenticated):
                        session = _Session(
                            event.peer_index,
                            event.boot_id,
                            self.index if role is Role.DIALER else event.peer_index,
                            ws,
                            connection,
                            loop.time(),
                        )
                        self._handshaking -= 1
                        handshaking = False
                        if self.is_quarantined(event.peer_index):
                            refused = "a handshake in quarantine"
                            self._fault(event.peer_index, PeerFault.QUARANTINED, refused)
                            session = None
                            await ws.close(code=CLOSE_QUARANTINED, message=b"quarantined")
                            return None
                        if not self._register(session):
                            session = None
                            await ws.close(code=CLOSE_REPLACED, message=b"duplicate session")
                            return 0.0  # authenticated, but kept no session
                        writer = asyncio.create_task(self._write(session))
                        writer.add_done_callback(functools.partial(self._writer_done, session))
                    elif isinstance(event, ProtocolFault):
                        if writer is not None:
                            writer.cancel()
                        self._fault(connection.peer_index, event.fault, event.detail)
                        if session is not None and event.fault in QUARANTINE_FAULTS:
                            self.quarantine(session.peer_index, event.fault.value)
                        return up_s()
                    elif isinstance(event, RemoteRefused):
                        self._fault(connection.peer_index, PeerFault.REFUSED_BY_PEER, event.reason)
                        return up_s()
                    elif session is not None:
                        await self._inbound.put((session.peer_index, event))
        except (ConnectionError, aiohttp.ClientError) as exc:
            self._fault(
                session.peer_index if session else expected_peer,
                PeerFault.CONNECTION_LOST,
                type(exc).__name__,
            )
            return up_s()
        finally:
            if handshaking:
                self._handshaking -= 1
            if writer is not None:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
            if session is not None:
                self._unregister(session)

    def _register(self, session: _Session) -> bool:
        link = self._links[session.peer_index]
        old = link.session
        if old is not None and not _new_session_wins(old, session):
            log.info("v%d: peer %d: keeping the existing session", self.index, session.peer_index)
            return False
        link.session = session
        link.idle.clear()
        self._sessions.add(session)
        if old is not None:
            self._sessions.discard(old)
            self._spawn(old.ws.close(code=CLOSE_REPLACED, message=b"replaced"))
        log.info(
            "v%d: peer %d connected (dialed by %d)",
            self.index,
            session.peer_index,
            session.dialer_index,
        )
        return True

    def _unregister(self, session: _Session) -> None:
        self._sessions.discard(session)
        link = self._links[session.peer_index]
        if link.session is session:
            link.session = None
            link.idle.set()
            log.info("v%d: peer %d disconnected", self.index, session.peer_index)

    def _writer_done(self, session: _Session, writer: asyncio.Task[None]) -> None:
        """A writer ends by itself only when its session was replaced. One that raised
        left a session that reads but never sends, so the peer missed every message
        until its socket closed: close it now, and the dial loop connects again."""
        if writer.cancelled() or (exc := writer.exception()) is None:
            return
        if isinstance(exc, (ConnectionError, aiohttp.ClientError)):
            detail = f"send failed: {type(exc).__name__}"
            self._fault(session.peer_index, PeerFault.CONNECTION_LOST, detail)
        else:
            log.error(
                "v%d: peer %d: the link's writer failed, closing the link: %s: %s",
                self.index,
                session.peer_index,
                type(exc).__name__,
                exc,
            )
        self._spawn(session.ws.close(code=CLOSE_WRITER_FAILED, message=b"send failed"))

    async def _write(self, session: _Session) -> None:
        """Drain the peer's queue into this session until it is cancelled."""
        link = self._links[session.peer_index]
        queue = link.queue
        connection = session.connection
        while True:
            item = queue.pop()
            if item is None:
                await queue.ready.wait()
                continue
            if link.session is not session:  # replaced: the new session's writer sends it
                queue.push_front(item)
                return
            if isinstance(item, _BatchFetch | _BlocksFetch):
                if connection.pending_requests >= MAX_PENDING_REQUESTS:
                    self._drops[session.peer_index] += 1
                    continue
                if isinstance(item, _BatchFetch):
                    _, data = connection.request_batch(item.digest)
                else:
                    _, data = connection.request_blocks(
                        item.first_height, item.last_height, item.max_bytes
                    )
            else:
                data = connection.send(item)
            if data:
                try:
                    await session.ws.send_bytes(data)
                except (ConnectionError, aiohttp.ClientError):
                    queue.push_front(item)  # the next session sends it
                    raise
