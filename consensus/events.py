"""Events fed into ``Replica.step``: the only way anything reaches the core."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.messages import Message, Request


@dataclass(frozen=True, slots=True)
class RequestSubmitted:
    """A client request reached this replica (clients send to every replica)."""

    request: Request


@dataclass(frozen=True, slots=True)
class ClientBatchReady:
    """The mempool hands over several requests at once."""

    requests: tuple[Request, ...]


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A peer message arrived; ``sender`` is the transport's idea of who sent it.

    Authenticity comes from the message signature alone, so a message may be
    relayed by another replica (e.g. a NEW-VIEW forwarded to a lagging peer).
    """

    sender: int
    message: Message


@dataclass(frozen=True, slots=True)
class Tick:
    """One unit of logical time; every timer in the core counts these.

    ``now_ms`` is the runtime's clock (the core reads none): the primary stamps
    its proposals with the latest value it saw, and backups judge a proposal's
    timestamp against it. The simulator passes ``tick * tick_ms``.
    """

    now_ms: int


@dataclass(frozen=True, slots=True)
class Executed:
    """The application executed height ``seq`` and now has ``state_root``."""

    seq: int
    state_root: bytes


@dataclass(frozen=True, slots=True)
class StateTransferCompleted:
    """The application fetched verified state up to ``seq``.

    ``committed_request_ids`` are the request ids in the fetched blocks of the
    last ``ReplicaConfig.request_id_window_heights`` heights up to ``seq``
    (older ones are not needed), so the core keeps deduplicating requests it
    never executed itself.
    """

    seq: int
    state_root: bytes
    committed_request_ids: tuple[bytes, ...] = ()


Event = (
    RequestSubmitted | ClientBatchReady | MessageReceived | Tick | Executed | StateTransferCompleted
)
