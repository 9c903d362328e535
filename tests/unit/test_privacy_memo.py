"""Encrypted openings: round trip, typed failures, the commitment check, canonical encoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey, PublicKey, SealedBox

from privacy import group
from privacy.memo import (
    MAX_MEMO_BYTES,
    MIN_MEMO_BYTES,
    MemoError,
    Opening,
    generate_memo_keypair,
    memo_public_key,
    open_memo,
    seal_memo,
    try_open_memo,
)
from privacy.pedersen import commit

ASSET = bytes(range(32))


def make_opening(value: int = 1_500_000, note: bytes = b"invoice 42") -> Opening:
    return Opening(value, group.random_scalar(), ASSET, note)


def seal_raw(plaintext: bytes, public: bytes) -> bytes:
    """A sealed box around arbitrary bytes, to reach the plaintext parser."""
    return bytes(SealedBox(PublicKey(public)).encrypt(plaintext))


def test_round_trip_and_size() -> None:
    private, public = generate_memo_keypair()
    assert len(private) == len(public) == 32 and memo_public_key(private) == public
    opening = make_opening()
    memo = seal_memo(opening, public)
    assert len(memo) == 123 + len(opening.note) == MIN_MEMO_BYTES + len(opening.note)
    assert open_memo(memo, private, opening.commitment()) == opening
    assert try_open_memo(memo, private, commit(opening.value, opening.blinding)) == opening


@pytest.mark.parametrize("note", [b"", b"x" * 256])
def test_note_bounds_round_trip(note: bytes) -> None:
    private, public = generate_memo_keypair()
    opening = make_opening(note=note)
    memo = seal_memo(opening, public)
    assert len(memo) == MIN_MEMO_BYTES + len(note) <= MAX_MEMO_BYTES
    assert open_memo(memo, private, opening.commitment()) == opening


def test_owner_and_auditor_each_open_their_memo() -> None:
    (owner_sk, owner_pk), (auditor_sk, auditor_pk) = (
        generate_memo_keypair(),
        generate_memo_keypair(),
    )
    opening = make_opening()
    to_owner, to_auditor = seal_memo(opening, owner_pk), seal_memo(opening, auditor_pk)
    assert open_memo(to_owner, owner_sk, opening.commitment()) == opening
    assert open_memo(to_auditor, auditor_sk, opening.commitment()) == opening
    assert try_open_memo(to_owner, auditor_sk, opening.commitment()) is None


def test_wrong_key_is_undecryptable_and_not_mine() -> None:
    _, public = generate_memo_keypair()
    other_private, _ = generate_memo_keypair()
    opening = make_opening()
    memo = seal_memo(opening, public)
    with pytest.raises(MemoError) as err:
        open_memo(memo, other_private, opening.commitment())
    assert err.value.reason == "UNDECRYPTABLE" and not err.value.decrypted
    assert try_open_memo(memo, other_private, opening.commitment()) is None


def test_truncated_or_extended_memo_fails_typed() -> None:
    private, public = generate_memo_keypair()
    opening = make_opening()
    memo = seal_memo(opening, public)
    for cut in range(len(memo)):
        with pytest.raises(MemoError) as err:
            open_memo(memo[:cut], private, opening.commitment())
        expected = "MALFORMED" if cut < MIN_MEMO_BYTES else "UNDECRYPTABLE"
        assert err.value.reason == expected, cut
        assert try_open_memo(memo[:cut], private, opening.commitment()) is None
    with pytest.raises(MemoError) as err:
        open_memo(memo + b"\x00", private, opening.commitment())
    assert err.value.reason == "UNDECRYPTABLE"
    with pytest.raises(MemoError) as err:
        open_memo(b"\x00" * (MAX_MEMO_BYTES + 1), private, opening.commitment())
    assert err.value.reason == "MALFORMED"


def test_every_tampered_byte_is_undecryptable() -> None:
    private, public = generate_memo_keypair()
    opening = make_opening()
    memo = seal_memo(opening, public)
    for index in range(len(memo)):
        tampered = bytearray(memo)
        tampered[index] ^= 0x01
        with pytest.raises(MemoError) as err:
            open_memo(bytes(tampered), private, opening.commitment())
        assert err.value.reason == "UNDECRYPTABLE", index


def test_opening_mismatch_is_reported_not_ignored() -> None:
    """A sender who seals (5, r) for a commitment to 6 is caught, including when scanning."""
    private, public = generate_memo_keypair()
    opening = make_opening(value=5)
    lying_commitment = commit(6, opening.blinding)
    memo = seal_memo(opening, public)
    with pytest.raises(MemoError) as err:
        open_memo(memo, private, lying_commitment)
    assert err.value.reason == "OPENING_MISMATCH" and err.value.decrypted
    with pytest.raises(MemoError) as scan_err:
        try_open_memo(memo, private, lying_commitment)
    assert scan_err.value.reason == "OPENING_MISMATCH"
    # A memo copied onto another output (other blinding) is a mismatch too.
    with pytest.raises(MemoError, match="OPENING_MISMATCH"):
        open_memo(memo, private, commit(5, group.random_scalar()))
    with pytest.raises(MemoError, match="OPENING_MISMATCH"):
        open_memo(memo, private, b"\xff" * 32)


def test_malformed_plaintexts_are_reported() -> None:
    private, public = generate_memo_keypair()
    opening = make_opening(note=b"abc")
    good = opening.encode()
    assert Opening.decode(good) == opening
    bad_blinding = good[:9] + (group.ORDER + 1).to_bytes(32, "little") + good[41:]
    # A declared length of 257 (the bytes would not fit in the largest memo anyway).
    big_note = good[:73] + (257).to_bytes(2, "little") + b"n" * 256
    cases = {
        "version": b"\x02" + good[1:],
        "trailing": good + b"\x00",
        "short note": good[:-1],
        "length says more": good[:73] + (4).to_bytes(2, "little") + b"abc",
        "non-canonical blinding": bad_blinding,
        "257-byte note": big_note,
    }
    for name, plaintext in cases.items():
        assert len(plaintext) + 48 >= MIN_MEMO_BYTES, name  # every case really is sealed
        memo = seal_raw(plaintext, public)
        with pytest.raises(MemoError) as err:
            try_open_memo(memo, private, opening.commitment())
        assert err.value.reason == "MALFORMED" and err.value.decrypted, name
    # Plaintexts shorter than a header give a memo too short to be sealed by seal_memo.
    with pytest.raises(MemoError) as short:
        Opening.decode(good[:74])
    assert short.value.reason == "MALFORMED"


def test_opening_validation() -> None:
    r = group.random_scalar()
    with pytest.raises(ValueError, match="note"):
        Opening(1, r, ASSET, b"n" * 257)
    Opening(1, r, ASSET, b"n" * 256)
    for value in (-1, 2**64):
        with pytest.raises(ValueError):
            Opening(value, r, ASSET)
    with pytest.raises(TypeError):
        Opening(True, r, ASSET)
    for blinding in (-1, group.ORDER):
        with pytest.raises(ValueError):
            Opening(1, blinding, ASSET)
    for asset in (ASSET[:31], ASSET + b"\x00"):
        with pytest.raises(ValueError):
            Opening(1, r, asset)
    with pytest.raises(ValueError):
        Opening(1, r, ASSET, "text")  # type: ignore[arg-type]


def test_bad_key_lengths_are_refused() -> None:
    private, public = generate_memo_keypair()
    opening = make_opening()
    with pytest.raises(ValueError):
        seal_memo(opening, public[:31])
    memo = seal_memo(opening, public)
    with pytest.raises(ValueError):
        open_memo(memo, private + b"\x00", opening.commitment())
    with pytest.raises(TypeError):
        seal_memo((1, 2), public)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="X25519"):
        seal_memo(opening, bytes(32))  # a low-order point


def test_memos_are_randomized() -> None:
    _, public = generate_memo_keypair()
    opening = make_opening()
    assert seal_memo(opening, public) != seal_memo(opening, public)


def test_nacl_interop_private_key_object() -> None:
    """Keys are plain X25519 bytes: a PyNaCl PrivateKey made elsewhere opens our memos."""
    key = PrivateKey.generate()
    opening = make_opening()
    memo = seal_memo(opening, bytes(key.public_key))
    assert open_memo(memo, bytes(key), opening.commitment()) == opening


@settings(max_examples=50)
@given(
    value=st.integers(min_value=0, max_value=2**64 - 1),
    blinding=st.integers(min_value=0, max_value=group.ORDER - 1),
    asset=st.binary(min_size=32, max_size=32),
    note=st.binary(max_size=256),
)
def test_encoding_is_canonical(value: int, blinding: int, asset: bytes, note: bytes) -> None:
    opening = Opening(value, blinding, asset, note)
    encoded = opening.encode()
    assert len(encoded) == 75 + len(note)
    assert Opening.decode(encoded) == opening
    assert Opening.decode(encoded).encode() == encoded
