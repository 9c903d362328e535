"""Quorum sizes for n = 3f+1 replicas, and the primary rotation."""

from __future__ import annotations


def max_faulty(replica_count: int) -> int:
    """f: the most byzantine replicas that ``replica_count`` replicas tolerate."""
    return (replica_count - 1) // 3


def quorum_size(replica_count: int) -> int:
    """2f+1: any two such sets share at least one honest replica."""
    return 2 * max_faulty(replica_count) + 1


def weak_quorum_size(replica_count: int) -> int:
    """f+1: such a set contains at least one honest replica."""
    return max_faulty(replica_count) + 1


def primary_of(view: int, replica_count: int) -> int:
    """The primary of ``view`` is ``view mod n``."""
    return view % replica_count
