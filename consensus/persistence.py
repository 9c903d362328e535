"""What a replica must keep across a crash so it never contradicts itself.

Rules: a vote record is written before the vote is sent; a prepared certificate
before the COMMIT it justifies (a later VIEW-CHANGE must carry it); the view
record before any message of the new view. Records form an append-only log and
``Replica.restore`` replays them in order, so losing a suffix that was never
synced is harmless: nothing that depended on it left the replica.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.messages import (
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
)


@dataclass(frozen=True, slots=True)
class ViewRecord:
    """The replica is in ``view``; ``active`` is False while it waits for NEW-VIEW."""

    view: int
    active: bool


@dataclass(frozen=True, slots=True)
class VoteRecord:
    """A message this replica signed; it must never sign a conflicting one."""

    message: PrePrepare | Prepare | Commit | ViewChange | NewView


@dataclass(frozen=True, slots=True)
class PreparedRecord:
    """A prepared certificate, needed by every later VIEW-CHANGE."""

    certificate: PreparedCertificate


@dataclass(frozen=True, slots=True)
class StableCheckpointRecord:
    """The latest stable checkpoint and its 2f+1 signatures."""

    seq: int
    state_root: bytes
    proof: tuple[Checkpoint, ...]


@dataclass(frozen=True, slots=True)
class NewViewRecord:
    """The verified NEW-VIEW a backup entered, with the pre-prepares it re-issued.

    Without it a backup that crashed right after entering the view had only
    its PREPAREs: it could not execute the re-issued batches, faulted honest
    relays of the null batch as invalid, and could not help laggards."""

    new_view: NewView


Record = ViewRecord | VoteRecord | PreparedRecord | StableCheckpointRecord | NewViewRecord
