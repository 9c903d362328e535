"""Quorum sizes and the primary rotation.

Replicas run with n = 3f+1 (``ReplicaConfig`` insists), where a quorum is 2f+1.
``quorum_size`` is written for any n, because a commit certificate may be
checked against a validator set nobody vetted: two quorums must share f+1
replicas, so that at least one honest replica is in both, which for n = 5
(f = 1) takes 4 signers, not 2f+1 = 3.
"""

from __future__ import annotations


def max_faulty(replica_count: int) -> int:
    """f: the most byzantine replicas that ``replica_count`` replicas tolerate."""
    return (replica_count - 1) // 3


def quorum_size(replica_count: int) -> int:
    """ceil((n+f+1)/2), which is 2f+1 for n = 3f+1: any two such sets share f+1 replicas."""
    return (replica_count + max_faulty(replica_count) + 2) // 2


def weak_quorum_size(replica_count: int) -> int:
    """f+1: such a set contains at least one honest replica."""
    return max_faulty(replica_count) + 1


def primary_of(view: int, replica_count: int) -> int:
    """The primary of ``view`` is ``view mod n``."""
    return view % replica_count
