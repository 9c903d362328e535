"""Review findings on commit certificates and quorum arithmetic.

A client or lagging node checks a block's certificate against the validator
set it knows, which ``ReplicaConfig`` never vetted: the check itself must
refuse a quorum that two conflicting certificates could both reach, and must
count signers by key, not by index.
"""

from __future__ import annotations

from dataclasses import replace

from consensus.certificate import CommitCertificate, verify_commit_certificate
from consensus.messages import Batch, signed_bytes
from consensus.quorum import max_faulty, quorum_size
from consensus.sim.fixtures import TEST_CHAIN_ID, commit, digest_of, request
from consensus.sim.keys import public_key, signer, verify

BATCH = (request(1),)
OTHER = (request(2),)


def certificate(batch: Batch, senders: tuple[int, ...]) -> CommitCertificate:
    commits = tuple(commit(0, 1, batch, s) for s in senders)
    return CommitCertificate(0, 1, digest_of(batch), commits)


def test_any_two_quorums_share_an_honest_replica_for_every_n() -> None:
    for n in range(4, 40):
        f = max_faulty(n)
        q = quorum_size(n)
        assert 2 * q - n >= f + 1, (n, q)
        assert q <= n - f, (n, q)  # and f silent replicas cannot block it


def test_quorum_size_is_unchanged_for_3f_plus_1() -> None:
    assert [quorum_size(3 * f + 1) for f in range(1, 6)] == [3, 5, 7, 9, 11]


def test_five_validators_cannot_certify_two_blocks_at_one_height() -> None:
    # n = 5, f = 1: replica 2 is byzantine and signs both digests. With a
    # quorum of 2f+1 = 3, {0, 1, 2} and {2, 3, 4} would certify both blocks.
    validators = [public_key(i) for i in range(5)]
    first = certificate(BATCH, (0, 1, 2))
    second = certificate(OTHER, (2, 3, 4))
    accepted = [
        verify_commit_certificate(c, validators, verify, TEST_CHAIN_ID) for c in (first, second)
    ]
    assert accepted != [True, True]
    assert verify_commit_certificate(
        certificate(BATCH, (0, 1, 2, 3)), validators, verify, TEST_CHAIN_ID
    )


def test_a_key_listed_twice_is_not_two_signers() -> None:
    # Indices 0 and 1 name the same key: one holder signs "twice".
    validators = [public_key(0), public_key(0), public_key(2), public_key(3)]
    doubled = CommitCertificate(
        0,
        1,
        digest_of(BATCH),
        (commit(0, 1, BATCH, 0), commit(0, 1, BATCH, 2)),
    )
    # Re-sign index 1 with key 0 (the same holder).
    as_one = replace(doubled.commits[0], sender=1)
    as_one = replace(as_one, signature=signer(0)(signed_bytes(as_one, TEST_CHAIN_ID)))
    cert = CommitCertificate(
        0, 1, digest_of(BATCH), (doubled.commits[0], as_one, doubled.commits[1])
    )
    assert not verify_commit_certificate(cert, validators, verify, TEST_CHAIN_ID)


def test_malformed_commit_fields_are_refused_not_raised() -> None:
    validators = [public_key(i) for i in range(4)]
    good = certificate(BATCH, (0, 1, 2))
    bad = replace(good, commits=(*good.commits[:2], replace(good.commits[2], sender="2")))
    assert not verify_commit_certificate(bad, validators, verify, TEST_CHAIN_ID)
    assert not verify_commit_certificate(
        replace(good, commits=None),
        validators,
        verify,
        TEST_CHAIN_ID,  # type: ignore[arg-type]
    )
