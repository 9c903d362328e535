"""verify_commit_certificate: what clients and lagging nodes rely on."""

from __future__ import annotations

from dataclasses import replace

from consensus.certificate import CommitCertificate, verify_commit_certificate
from consensus.sim.fixtures import TEST_CHAIN_ID, commit, digest_of, request
from consensus.sim.keys import public_key, verify

BATCH = (request(1),)
VALIDATORS = [public_key(i) for i in range(4)]


def certificate(senders: tuple[int, ...] = (0, 1, 2)) -> CommitCertificate:
    commits = tuple(commit(0, 1, BATCH, s) for s in senders)
    return CommitCertificate(0, 1, digest_of(BATCH), commits)


def check(cert: CommitCertificate, chain_id: bytes = TEST_CHAIN_ID) -> bool:
    return verify_commit_certificate(cert, VALIDATORS, verify, chain_id)


def test_valid_certificate() -> None:
    assert check(certificate())
    assert check(certificate((0, 1, 2, 3)))


def test_too_few_or_repeated_signers() -> None:
    assert not check(certificate((0, 1)))
    assert not check(certificate((0, 1, 1)))


def test_commit_for_another_triple() -> None:
    cert = certificate()
    other = commit(0, 1, (request(2),), 2)
    assert not check(replace(cert, commits=(*cert.commits[:2], other)))
    assert not check(replace(cert, seq=2))
    assert not check(replace(cert, view=1))


def test_bad_signature_non_member_and_foreign_chain() -> None:
    cert = certificate()
    forged = replace(cert.commits[2], signature=b"\x00" * 16)
    assert not check(replace(cert, commits=(*cert.commits[:2], forged)))
    stranger = replace(cert.commits[2], sender=9)
    assert not check(replace(cert, commits=(*cert.commits[:2], stranger)))
    assert not check(cert, chain_id=b"another-chain")


def test_too_small_validator_set_is_refused() -> None:
    cert = certificate()
    assert not verify_commit_certificate(cert, VALIDATORS[:3], verify, TEST_CHAIN_ID)
