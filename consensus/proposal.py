"""Judging a fresh proposal's metadata before preparing it.

The core hands the check to an injected pure function, ``ValidateProposal``:
the node builds one from the genesis (``max_timestamp_skew_ms``), the core
ships two. A problem is a primary fault: the backup does not prepare, reports
it, and keeps its view-change timer running, so a primary that insists is
replaced.

Only fresh proposals are judged. A batch a NEW-VIEW re-issues was prepared by
a quorum in an earlier view and may already be committed somewhere; refusing
it on a clock would be unsafe to liveness and buys nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus.messages import ProposalMetadata

ValidateProposal = Callable[[ProposalMetadata, ProposalMetadata | None, int], str | None]
"""``validate(metadata, parent_metadata, now_ms) -> problem | None``, injected and pure.

``parent_metadata`` is the metadata of the batch at ``seq - 1`` as this
replica knows it (the committed one, else the one of the current view), or
None when it knows none (e.g. right after a state transfer). ``now_ms`` is the
latest ``Tick.now_ms`` the replica saw."""


def monotonic_timestamps(
    metadata: ProposalMetadata, parent: ProposalMetadata | None, now_ms: int
) -> str | None:
    """The default: a timestamp never goes back in time from its parent's.

    It ignores ``now_ms``: with no skew bound a replica's clock has no say.
    """
    del now_ms
    if parent is not None and metadata.timestamp_ms < parent.timestamp_ms:
        return f"timestamp {metadata.timestamp_ms} before its parent's {parent.timestamp_ms}"
    return None


def bounded_skew(max_skew_ms: int) -> ValidateProposal:
    """Monotonic timestamps, at most ``max_skew_ms`` ahead of this replica's clock."""

    def validate(
        metadata: ProposalMetadata, parent: ProposalMetadata | None, now_ms: int
    ) -> str | None:
        problem = monotonic_timestamps(metadata, parent, now_ms)
        if problem is None and metadata.timestamp_ms > now_ms + max_skew_ms:
            ahead_ms = metadata.timestamp_ms - now_ms
            problem = f"timestamp {ahead_ms} ms ahead of the clock (bound {max_skew_ms} ms)"
        return problem

    return validate
