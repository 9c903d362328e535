"""What a replica must keep across a crash so it never contradicts itself.

Rules: a vote record is written before the vote is sent; a prepared certificate
before the COMMIT it justifies (a later VIEW-CHANGE must carry it); the view
record before any message of the new view. Records form an append-only log and
``Replica.restore`` replays them in order, so losing a suffix that was never
synced is harmless: nothing that depended on it left the replica.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consensus.messages import (
    Batch,
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ProposalMetadata,
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


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """The batch and metadata a prepared certificate names (written with it):
    certificates carry digests only, and the batch must outlive a crash of
    every replica that prepared it, since a NEW-VIEW may re-issue it."""

    seq: int
    digest: bytes
    batch: Batch
    metadata: ProposalMetadata


Record = (
    ViewRecord | VoteRecord | PreparedRecord | StableCheckpointRecord | NewViewRecord | BatchRecord
)


def live_records(records: Sequence[Record]) -> list[Record]:
    """The records a restart still needs, in their order: the write-ahead log
    can be compacted to these (issue 8 §4).

    ``Replica.restore`` from the result rebuilds the same replica as from all
    of ``records``. Dropped, because the replay would overwrite or discard
    them anyway:

    * votes and prepared certificates at or below the highest stable
      checkpoint (garbage collection drops them; the watermarks refuse those
      heights forever), and a prepared certificate superseded by a later one
      for a higher view at its height;
    * every stable checkpoint record but the highest;
    * every view record but the highest (view, active) one;
    * VIEW-CHANGEs for views up to the highest view the replica has run
      (entering a view forgets them), and NEW-VIEWs below the highest one
      (only the latest is kept; pre-prepares it re-issued in older views are
      votes of views the replica never votes in again).
    """
    stable_seq = max((r.seq for r in records if isinstance(r, StableCheckpointRecord)), default=0)
    views = [(r.view, r.active) for r in records if isinstance(r, ViewRecord)]
    top_view = max(views, default=None)
    ran_view = max((view for view, active in views if active), default=-1)
    top_new_view = max((nv.view for nv in map(_new_view_of, records) if nv is not None), default=-1)
    best_prepared: dict[int, int] = {}
    for record in records:
        if isinstance(record, PreparedRecord):
            pp = record.certificate.pre_prepare
            best_prepared[pp.seq] = max(best_prepared.get(pp.seq, -1), pp.view)
    last_top_view = max(
        (
            i
            for i, r in enumerate(records)
            if isinstance(r, ViewRecord) and (r.view, r.active) == top_view
        ),
        default=-1,
    )
    # The replay keeps the first record at the highest height.
    first_stable = min(
        (
            i
            for i, r in enumerate(records)
            if isinstance(r, StableCheckpointRecord) and r.seq == stable_seq
        ),
        default=-1,
    )
    kept: list[Record] = []
    for index, record in enumerate(records):
        match record:
            case ViewRecord():
                live = index == last_top_view
            case StableCheckpointRecord():
                live = index == first_stable
            case PreparedRecord(certificate=cert):
                pp = cert.pre_prepare
                live = pp.seq > stable_seq and pp.view == best_prepared[pp.seq]
            case NewViewRecord(new_view=nv) | VoteRecord(message=NewView() as nv):
                live = nv.view == top_new_view
            case VoteRecord(message=ViewChange() as vc):
                live = vc.new_view > ran_view
            case VoteRecord(message=PrePrepare() | Prepare() | Commit() as vote):
                live = vote.seq > stable_seq
            case BatchRecord(seq=seq):
                live = seq > stable_seq
        if live:
            kept.append(record)
    return kept


def _new_view_of(record: Record) -> NewView | None:
    match record:
        case NewViewRecord(new_view=nv) | VoteRecord(message=NewView() as nv):
            return nv
    return None
