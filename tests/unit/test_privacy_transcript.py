"""Transcripts: Merlin/STROBE vectors, Keccak against hashlib, the default byte spec."""

from __future__ import annotations

import hashlib

import pytest

from privacy import group as g
from privacy.keccak import keccak_f1600
from privacy.merlin import Merlin, Strobe128
from privacy.transcript import (
    DEFAULT_TRANSCRIPT_TAG,
    DefaultTranscript,
    MerlinTranscript,
    TranscriptError,
    make_transcript,
)

MERLIN_SIMPLE = "d5a21972d0d5fe320c0d263fac7fffb8145aa640af6e9bca177c03c7efcf0615"
MERLIN_COMPLEX = "a8c933f54fae76e3f9bea93648c1308e7dfa2152dd51674ff3ca438351cf003c"
STROBE_PRF1 = "b48e645ca17c667fd5206ba57a6a228d72d8e1903814d3f17f622996d7cfefb0"
STROBE_PRF2 = "07e45cce8078cee259e3e375bb85d75610e2d1e1201c5f645045a194edd49ff8"


def _sha3_256(message: bytes) -> bytes:
    rate = 136
    padded = bytearray(message) + b"\x06" + bytes((-len(message) - 1) % rate)
    padded[-1] |= 0x80
    state = bytearray(200)
    for start in range(0, len(padded), rate):
        for j in range(rate):
            state[j] ^= padded[start + j]
        keccak_f1600(state)
    return bytes(state[:32])


@pytest.mark.parametrize("message", [b"", b"abc", bytes(range(256)) * 3])
def test_keccak_permutation_matches_hashlib_sha3(message: bytes) -> None:
    assert _sha3_256(message) == hashlib.sha3_256(message).digest()


def test_keccak_rejects_wrong_state_size() -> None:
    with pytest.raises(ValueError, match="200 bytes"):
        keccak_f1600(bytearray(199))


def test_merlin_simple_vector() -> None:
    t = Merlin(b"test protocol")
    t.append_message(b"some label", b"some data")
    assert t.challenge_bytes(b"challenge", 32).hex() == MERLIN_SIMPLE
    wrapped = MerlinTranscript(b"test protocol")
    wrapped.append_message(b"some label", b"some data")
    assert wrapped.challenge_bytes(b"challenge", 32).hex() == MERLIN_SIMPLE


def test_merlin_complex_vector() -> None:
    t = make_transcript("merlin", b"test protocol")
    t.append_message(b"step1", b"some data")
    challenge = b""
    for _ in range(32):
        challenge = t.challenge_bytes(b"challenge", 32)
        t.append_message(b"bigdata", b"c" * 1024)
        t.append_message(b"challengedata", challenge)
    assert challenge.hex() == MERLIN_COMPLEX


def test_strobe_conformance_vector() -> None:
    s = Strobe128(b"Conformance Test Protocol")
    s.meta_ad(b"ms", more=False)
    s.meta_ad(b"g", more=True)
    s.ad(b"c" * 1024, more=False)
    s.meta_ad(b"prf", more=False)
    prf1 = s.prf(32, more=False)
    s.meta_ad(b"key", more=False)
    s.key(prf1, more=False)
    s.meta_ad(b"prf", more=False)
    prf2 = s.prf(32, more=False)
    assert prf1.hex() == STROBE_PRF1
    assert prf2.hex() == STROBE_PRF2


def test_strobe_refuses_inconsistent_continuation() -> None:
    s = Strobe128(b"x")
    s.meta_ad(b"a", more=False)
    with pytest.raises(ValueError, match="different flags"):
        s.ad(b"b", more=True)


def test_merlin_clone_is_independent() -> None:
    t = Merlin(b"p")
    t.append_message(b"a", b"b")
    u = t.clone()
    assert t.challenge_bytes(b"c", 16) == u.challenge_bytes(b"c", 16)
    t.append_message(b"x", b"1")
    u.append_message(b"x", b"2")
    assert t.challenge_bytes(b"c", 16) != u.challenge_bytes(b"c", 16)


def _framed(op: int, label: bytes, data: bytes) -> bytes:
    return (
        bytes((op,))
        + len(label).to_bytes(4, "little")
        + label
        + (len(data).to_bytes(8, "little") + data)
    )


def test_default_transcript_follows_documented_byte_spec() -> None:
    t = DefaultTranscript(b"veil/rangeproof/v1")
    t.append_message(b"V", b"\x01" * 32)
    t.append_u64(b"n", 64)
    out = t.challenge_bytes(b"y", 64)
    stream = (
        _framed(0, DEFAULT_TRANSCRIPT_TAG, b"")
        + _framed(1, b"dom-sep", b"veil/rangeproof/v1")
        + _framed(1, b"V", b"\x01" * 32)
        + _framed(1, b"n", (64).to_bytes(8, "little"))
        + _framed(2, b"y", (64).to_bytes(8, "little"))
    )
    assert out == hashlib.shake_256(stream).digest(64)
    assert DEFAULT_TRANSCRIPT_TAG == b"veil/transcript/default/v1"
    second = t.challenge_bytes(b"z", 32)
    stream += _framed(2, b"z", (32).to_bytes(8, "little"))
    assert second == hashlib.shake_256(stream).digest(32)


def test_default_transcript_helpers_frame_like_the_byte_spec() -> None:
    # DefaultTranscript overrides the helpers for speed; they must frame
    # exactly as append_message/challenge_bytes would, bytearray labels included.
    point = g.mul_base(5)
    t = DefaultTranscript(bytearray(b"label"))
    t.append_point(b"V", point)
    t.validate_and_append_point(bytearray(b"A"), point)
    t.append_point(b"odd", b"\x07" * 31)
    t.append_scalar(b"t_x", g.ORDER + 3)
    scalar = t.challenge_scalar(b"y")
    with pytest.raises(TranscriptError):
        t.validate_and_append_point(b"S", g.IDENTITY)
    stream = (
        _framed(0, DEFAULT_TRANSCRIPT_TAG, b"")
        + _framed(1, b"dom-sep", b"label")
        + _framed(1, b"V", point)
        + _framed(1, b"A", point)
        + _framed(1, b"odd", b"\x07" * 31)
        + _framed(1, b"t_x", (3).to_bytes(32, "little"))
        + _framed(2, b"y", (64).to_bytes(8, "little"))
    )
    wide = hashlib.shake_256(stream).digest(64)
    assert scalar == int.from_bytes(wide, "little") % g.ORDER
    assert t.challenge_bytes(b"z", 16) == hashlib.shake_256(
        stream + _framed(2, b"z", (16).to_bytes(8, "little"))
    ).digest(16)


@pytest.mark.parametrize("kind", ["merlin", "default"])
def test_transcripts_bind_labels_messages_and_order(kind: str) -> None:
    def run(label: bytes, steps: list[tuple[bytes, bytes]]) -> int:
        t = make_transcript(kind, label)
        for lab, msg in steps:
            t.append_message(lab, msg)
        return t.challenge_scalar(b"c")

    base = run(b"L", [(b"a", b"bc"), (b"d", b"")])
    assert base == run(b"L", [(b"a", b"bc"), (b"d", b"")])
    assert 0 <= base < g.ORDER
    assert base != run(b"M", [(b"a", b"bc"), (b"d", b"")])
    assert base != run(b"L", [(b"ab", b"c"), (b"d", b"")])
    assert base != run(b"L", [(b"d", b""), (b"a", b"bc")])
    assert base != run(b"L", [(b"a", b"bc"), (b"d", b"\x00")])
    t = make_transcript(kind, b"L")
    assert t.challenge_scalar(b"c") != t.challenge_scalar(b"c")


@pytest.mark.parametrize("kind", ["merlin", "default"])
def test_helpers_encode_like_dalek(kind: str) -> None:
    a = make_transcript(kind, b"L")
    b = make_transcript(kind, b"L")
    a.append_u64(b"n", 8)
    b.append_message(b"n", (8).to_bytes(8, "little"))
    a.append_scalar(b"s", 5)
    b.append_message(b"s", (5).to_bytes(32, "little"))
    a.append_point(b"P", g.BASEPOINT)
    b.validate_and_append_point(b"P", g.BASEPOINT)
    wide_a = a.challenge_scalar(b"w")
    assert wide_a == int.from_bytes(b.challenge_bytes(b"w", 64), "little") % g.ORDER
    with pytest.raises(TranscriptError):
        a.validate_and_append_point(b"A", g.IDENTITY)
    with pytest.raises(ValueError, match="64-bit"):
        a.append_u64(b"n", -1)
    with pytest.raises(ValueError, match="64-bit"):
        a.append_u64(b"n", 2**64)


def test_make_transcript_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown transcript kind"):
        make_transcript("sha256", b"L")
    assert isinstance(make_transcript("merlin", b"L"), MerlinTranscript)
    assert isinstance(make_transcript("default", b"L"), DefaultTranscript)


def test_default_transcript_check_value_in_docs() -> None:
    t = DefaultTranscript(b"test protocol")
    t.append_message(b"some label", b"some data")
    expected = "51d8c9a753d0a8d629cb14421e2ea4c91992cfe7fee57185fa59343957879af8"
    assert t.challenge_bytes(b"challenge", 32).hex() == expected


def test_unrolled_permutation_matches_reference_loops() -> None:
    import random

    from privacy.keccak import _permute, keccak_f1600_lanes

    rng = random.Random(7)
    for _ in range(3):
        lanes = [rng.getrandbits(64) for _ in range(25)]
        assert _permute(lanes) == keccak_f1600_lanes(list(lanes))
    assert _permute([0] * 25)[0] == 0xF1258F7940E1DDE7  # Keccak team's zero-state value
