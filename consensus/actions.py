"""Actions returned by ``Replica.step``: the runtime carries them out in list order."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.certificate import CommitCertificate
from consensus.messages import Batch, Message, ProposalMetadata
from consensus.persistence import Record


@dataclass(frozen=True, slots=True)
class Send:
    to: int
    message: Message


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send to every other replica."""

    message: Message


@dataclass(frozen=True, slots=True)
class Persist:
    """Make ``records`` durable (fsync) before carrying out any later action in the list."""

    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class Execute:
    """Apply ``batch`` as block ``seq``; reply with ``Executed``.

    ``metadata`` is what the primary bound to the batch (its timestamp, the
    view that first proposed it); the certificate's digest covers both.

    The application skips requests whose id it already executed: after a view
    change an old prepared batch may repeat a request (PBFT's reply cache).
    """

    seq: int
    batch: Batch
    metadata: ProposalMetadata
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class RequestStateTransfer:
    """Fetch state up to ``seq`` with root ``state_root`` from any of ``peers``."""

    seq: int
    state_root: bytes
    peers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ReportFault:
    """A peer misbehaved (or a message was forged in its name); it was dropped."""

    kind: str
    peer: int
    detail: str


@dataclass(frozen=True, slots=True)
class Diverged:
    """Our state root differs from a stable checkpoint: stop, an operator must look."""

    seq: int
    own_state_root: bytes
    stable_state_root: bytes


Action = Send | Broadcast | Persist | Execute | RequestStateTransfer | ReportFault | Diverged
