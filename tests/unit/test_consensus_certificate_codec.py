"""The canonical bytes of a commit certificate (issue 8 §4 "Certificates").

The ledger stores these bytes opaquely beside each block; a client holding
only the genesis validator keys decodes them and checks them with
``verify_commit_certificate``.
"""

from __future__ import annotations

from dataclasses import replace

import msgpack
import pytest

from consensus.certificate import CommitCertificate, verify_commit_certificate
from consensus.sim.fixtures import TEST_CHAIN_ID, commit, digest_of, request
from consensus.sim.keys import public_key, verify
from consensus.wire import CERTIFICATE_TAG, WireError, decode_certificate, encode_certificate

BATCH = (request(1),)
CERT = CommitCertificate(0, 1, digest_of(BATCH), tuple(commit(0, 1, BATCH, s) for s in (0, 1, 2)))
GOLDEN = bytes.fromhex(
    "95d9247665696c2f636f6e73656e7375732f636f6d6d69742d63657274696669636174652f76310001"
    "c4204318d15b898419daa5a4cf4382cc60392dfa1e05438cbe34628e4a8db2d2568b"
    "939200c4104841fda909a96e7fe8007213f7ce10f7"
    "9201c4106fe405fb734206d348b36d4654d9fbf7"
    "9202c410cec105ea7a41e61fb6a6f656bf67384d"
)
VALIDATORS = tuple(public_key(i) for i in range(4))


def test_golden_bytes() -> None:
    assert encode_certificate(CERT) == GOLDEN
    assert decode_certificate(GOLDEN) == CERT


def test_a_client_with_only_the_genesis_keys_verifies_the_stored_bytes() -> None:
    stored = encode_certificate(CERT)
    assert verify_commit_certificate(decode_certificate(stored), VALIDATORS, verify, TEST_CHAIN_ID)
    flipped = bytearray(stored)
    flipped[-1] ^= 1  # last byte of the last signature
    tampered = decode_certificate(bytes(flipped))
    assert not verify_commit_certificate(tampered, VALIDATORS, verify, TEST_CHAIN_ID)


def test_the_order_of_commits_does_not_change_the_bytes() -> None:
    shuffled = replace(CERT, commits=tuple(reversed(CERT.commits)))
    assert encode_certificate(shuffled) == GOLDEN


def body(*pairs: list[object], digest: bytes = CERT.digest) -> list[object]:
    return [CERTIFICATE_TAG, 0, 1, digest, list(pairs)]


def pack(value: object) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


SIG = CERT.commits[0].signature


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (GOLDEN + b"\x00", "not msgpack"),
        (GOLDEN[:-1], "not msgpack"),
        (pack(body([0, SIG], digest=bytes(31))), "digest is not 32 bytes"),
        (pack(body([0, SIG], digest=bytes(1 << 20))), "too large"),
        (pack(body([0, bytes(65)])), "signature is not 0-64 bytes"),
        (pack(body([1, SIG], [0, SIG])), "not strictly increasing"),
        (pack(body([0, SIG], [0, SIG])), "not strictly increasing"),
        (pack(body()), "needs signers"),
        (pack(body([0, SIG, 1])), r"expected \[sender, signature\]"),
        (pack(body([-1, SIG])), "unsigned 64-bit"),
        (pack(["another/tag", 0, 1, CERT.digest, [[0, SIG]]]), "not a commit certificate"),
        (pack(body([0, SIG])[:4]), "not a commit certificate"),
        (pack(body([0, "text"])), "expected bytes"),
        (
            bytes.fromhex("95") + pack(CERTIFICATE_TAG) + bytes.fromhex("cc00") + GOLDEN[40:],
            "canonical",
        ),
    ],
)
def test_strict_decoding(data: bytes, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        decode_certificate(data)


def test_encoding_refuses_commits_of_another_triple_or_a_repeated_signer() -> None:
    other = replace(CERT, commits=(*CERT.commits[:2], replace(CERT.commits[2], seq=2)))
    with pytest.raises(WireError, match="does not match"):
        encode_certificate(other)
    doubled = replace(CERT, commits=(*CERT.commits, CERT.commits[0]))
    with pytest.raises(WireError, match="repeats a signer"):
        encode_certificate(doubled)
