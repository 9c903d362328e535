"""Commit certificates: 2f+1 signed COMMITs over one (view, seq, digest).

The node stores one with every block, and clients and lagging nodes check it
with ``verify_commit_certificate`` before trusting the block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.messages import Commit, signed_bytes
from consensus.quorum import quorum_size

Verify = Callable[[bytes, bytes, bytes], bool]
"""``verify(public_key, signed_bytes, signature) -> bool``, injected and pure."""


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    view: int
    seq: int
    digest: bytes
    commits: tuple[Commit, ...]


def verify_commit_certificate(
    certificate: CommitCertificate,
    validators: Sequence[bytes],
    verify: Verify,
    chain_id: bytes,
) -> bool:
    """True when a quorum (2f+1 for n = 3f+1) of distinct validators signed COMMIT
    for the certificate's triple. Never raises on a malformed certificate: it
    comes from a peer. A validator set that lists one key twice is refused, or
    that key's holder would count as two signers."""
    if (
        type(certificate.view) is not int
        or type(certificate.seq) is not int
        or type(certificate.digest) is not bytes
        or not isinstance(certificate.commits, tuple)
        or len(set(validators)) != len(validators)
    ):
        return False
    signers: set[int] = set()
    for commit in certificate.commits:
        if (
            not isinstance(commit, Commit)
            or type(commit.sender) is not int
            or type(commit.signature) is not bytes
        ):
            return False
        if (commit.view, commit.seq, commit.digest) != (
            certificate.view,
            certificate.seq,
            certificate.digest,
        ):
            return False
        if not 0 <= commit.sender < len(validators) or commit.sender in signers:
            return False
        if not verify(validators[commit.sender], signed_bytes(commit, chain_id), commit.signature):
            return False
        signers.add(commit.sender)
    return len(validators) >= 4 and len(signers) >= quorum_size(len(validators))
