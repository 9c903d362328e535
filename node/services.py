"""``NodeServices``: what the HTTP API may ask of a running node, and nothing more.

The API reads snapshots, never ``Replica`` or mempool internals (STYLE.md,
CometBFT's reactor copy of the round state): every value here is a frozen
record, built by the runtime on its own loop and handed over whole. The
runtime (``node.runtime``) is the production implementation; API tests use a
small one over a real store and a real ``PendingTxs``.

Tx statuses and submit outcomes carry stable reason codes (``ledger.reasons``
spellings, or the ``BUSY_*``/``NODE_*`` codes below), never an amount, an
opening or a secret: the API turns them into ``{"error": {"code", "message"}}``.

``metrics`` is the node's ``node.metrics.NodeMetrics`` (its own Prometheus
registry), which ``/metrics`` renders.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from ledger.genesis import Genesis
from ledger.store import StoreReader
from node.metrics import NodeMetrics

BUSY_MEMPOOL_FULL: Final = "MEMPOOL_FULL"
"""Submit refused: the mempool is at its count or byte bound (HTTP 503 + Retry-After)."""
BUSY_RATE_LIMITED: Final = "RATE_LIMITED"
"""Submit refused: the sender's account exceeded its rate (HTTP 429 + Retry-After)."""
NODE_STOPPED: Final = "NODE_STOPPED"
"""Submit refused: the node stopped (WAL latched, diverged, or draining) (HTTP 503)."""


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One other validator, by its index in the genesis validator list."""

    index: int
    public_key: bytes
    connected: bool


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Catch-up in progress: fetching up to ``target_height``; ``done_height`` applied."""

    target_height: int
    done_height: int


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A snapshot of the node, for ``/v1/status`` and ``/healthz``."""

    height: int
    view: int
    primary: int
    state_root: bytes
    last_commit_ms: int | None
    """Wall-clock ms of the last block this node committed; ``None`` before the first."""
    peers: tuple[PeerStatus, ...]
    mempool_txs: int
    mempool_bytes: int
    catching_up: CatchUp | None
    stopped: bool
    """The runtime no longer runs the core (WAL latched, diverged, draining)."""
    stop_reason: str | None
    wal_latched: bool
    msm_backend: str
    """The multiscalar-multiplication backend the range proofs use (e.g. ``"python"``)."""


# --- submit -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    """The tx passed admission and is pending (HTTP 202)."""

    tx_id: bytes


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The tx is already pending or committed: same answer as the first submit (HTTP 202)."""

    tx_id: bytes


@dataclass(frozen=True, slots=True)
class Rejected:
    """The tx failed admission: ``reason_code`` is a ``ledger.reasons.Reason`` value."""

    tx_id: bytes | None
    """``None`` when the bytes do not decode far enough to name a tx."""
    reason_code: str
    message: str


@dataclass(frozen=True, slots=True)
class Busy:
    """Refused for now, try again after ``retry_after_ms`` (``code``: a ``BUSY_*`` or
    ``NODE_STOPPED``).

    In milliseconds: HTTP's ``Retry-After`` counts whole seconds (the API rounds up),
    and a batch's busy item has no header, only this (``retry_after_ms``)."""

    code: str
    retry_after_ms: int


SubmitOutcome = Accepted | Duplicate | Rejected | Busy


# --- tx status ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pending:
    tx_id: bytes


@dataclass(frozen=True, slots=True)
class Committed:
    """In block ``height`` at ``index``; the certificate is ``store.certificate_at(height)``."""

    tx_id: bytes
    height: int
    index: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class TxRejectedStatus:
    """Refused with ``reason_code``; ``height`` is set when execution rejected it in a block."""

    tx_id: bytes
    reason_code: str
    height: int | None


@dataclass(frozen=True, slots=True)
class Unknown:
    tx_id: bytes


TxStatus = Pending | Committed | TxRejectedStatus | Unknown


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockCommitted:
    height: int
    block_hash: bytes
    state_root: bytes
    tx_ids: tuple[bytes, ...]
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class TxStatusChanged:
    status: TxStatus


ChainEvent = BlockCommitted | TxStatusChanged


class EventSubscription(Protocol):
    """A bounded queue of chain events for one subscriber.

    When the subscriber falls ``max_queue`` events behind, the subscription is
    closed (``overflowed`` becomes true), its backlog is dropped and iteration
    ends: a slow consumer is dropped, never allowed to grow the node's memory.
    """

    @property
    def overflowed(self) -> bool: ...

    async def wait_overflowed(self) -> None:
        """Return once ``overflowed`` is true (never, for a subscriber that keeps up)."""

    def __aiter__(self) -> AsyncIterator[ChainEvent]: ...

    def close(self) -> None: ...


class NodeServices(Protocol):
    """Everything the API needs from the node."""

    @property
    def genesis(self) -> Genesis: ...

    @property
    def store(self) -> StoreReader:
        """The committed chain; the API only reads it."""
        ...

    @property
    def metrics(self) -> NodeMetrics: ...

    def status(self) -> NodeStatus: ...

    async def submit(self, tx_bytes: bytes) -> SubmitOutcome: ...

    async def submit_many(self, txs: Sequence[bytes]) -> list[SubmitOutcome | Exception]:
        """Each tx as ``submit``, admitted in the order given (a client's batch). An
        item whose admission raised (a bug) gets its exception; the others keep
        their outcomes."""
        ...

    def check_ahead(self, txs: Sequence[bytes]) -> None:
        """Prepare a batch about to be submitted tx by tx (its signatures checked
        at once); only a speed-up, so doing nothing is correct."""
        ...

    def tx_status(self, tx_id: bytes) -> TxStatus: ...

    async def wait_for_commit(self, tx_id: bytes, timeout_s: float) -> TxStatus:
        """The status once the tx is committed or rejected, or its status at the timeout."""
        ...

    def subscribe(self, max_queue: int) -> EventSubscription: ...
