"""Domain-separated ed25519 signatures and key files."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import identity
from ledger.codec import EncodeError, encode_value
from ledger.identity import (
    KeyFileError,
    SigningIdentity,
    check_domain_tag,
    ed25519_key_problem,
    signing_bytes,
    verify_signature,
)

CHAIN_A = bytes(range(32))
CHAIN_B = bytes(range(1, 33))
TRANSFER = b"veil/tx/transfer/v1"
ISSUE = b"veil/tx/issue/v1"


@pytest.fixture(scope="module")
def alice() -> SigningIdentity:
    return SigningIdentity.from_seed(b"\x11" * 32)


def test_sign_and_verify(alice: SigningIdentity) -> None:
    sig = alice.sign(TRANSFER, CHAIN_A, b"payload")
    assert verify_signature(alice.public_key, TRANSFER, CHAIN_A, b"payload", sig)


def test_signature_does_not_cross_domains(alice: SigningIdentity) -> None:
    sig = alice.sign(TRANSFER, CHAIN_A, b"payload")
    assert not verify_signature(alice.public_key, ISSUE, CHAIN_A, b"payload", sig)
    assert not verify_signature(alice.public_key, b"veil/tx/transfer/v2", CHAIN_A, b"payload", sig)


def test_signature_does_not_cross_chains(alice: SigningIdentity) -> None:
    sig = alice.sign(TRANSFER, CHAIN_A, b"payload")
    assert not verify_signature(alice.public_key, TRANSFER, CHAIN_B, b"payload", sig)


def test_signature_does_not_cross_payloads_or_keys(alice: SigningIdentity) -> None:
    sig = alice.sign(TRANSFER, CHAIN_A, b"payload")
    bob = SigningIdentity.from_seed(b"\x22" * 32)
    assert not verify_signature(alice.public_key, TRANSFER, CHAIN_A, b"payloaD", sig)
    assert not verify_signature(bob.public_key, TRANSFER, CHAIN_A, b"payload", sig)


def test_raw_ed25519_signature_over_payload_is_rejected(alice: SigningIdentity) -> None:
    """A signature over the bare payload (no tag, no chain) must not verify."""
    raw = alice._signing_key.sign(b"payload").signature
    assert not verify_signature(alice.public_key, TRANSFER, CHAIN_A, b"payload", raw)


@given(
    st.sampled_from([TRANSFER, ISSUE, b"veil/consensus/commit/v1"]),
    st.sampled_from([TRANSFER, ISSUE, b"veil/consensus/commit/v1"]),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=64),
)
def test_signature_verifies_only_in_its_own_context(
    tag1: bytes, tag2: bytes, chain1: bytes, chain2: bytes, payload: bytes
) -> None:
    signer = SigningIdentity.from_seed(b"\x33" * 32)
    sig = signer.sign(tag1, chain1, payload)
    same = tag1 == tag2 and chain1 == chain2
    assert verify_signature(signer.public_key, tag2, chain2, payload, sig) == same


def test_signing_bytes_are_unambiguous() -> None:
    # Moving bytes between payload and tag must change what is signed.
    assert signing_bytes(TRANSFER, CHAIN_A, b"ab") != signing_bytes(TRANSFER, CHAIN_A, b"a")


@pytest.mark.parametrize("length", [0, 1, 255, 256, 65535, 65536, 70000])
def test_signing_bytes_are_the_canonical_triple_at_every_bin_size(length: int) -> None:
    # The first call checks the pair and keeps its head; the second takes the fast path.
    payload = os.urandom(length)
    for _ in range(2):
        assert signing_bytes(TRANSFER, CHAIN_A, payload) == encode_value(
            (TRANSFER, CHAIN_A, payload)
        )


@given(
    tag=st.from_regex(rb"\Aveil/[a-z0-9_]{1,12}(/[a-z0-9_]{1,12}){0,2}/v[0-9]{1,3}\Z"),
    chain=st.binary(min_size=32, max_size=32),
    payload=st.binary(max_size=600),
)
def test_signing_bytes_match_encode_value(tag: bytes, chain: bytes, payload: bytes) -> None:
    assert signing_bytes(tag, chain, payload) == encode_value((tag, chain, payload))
    assert signing_bytes(tag, chain, payload) == encode_value((tag, chain, payload))


def test_a_kept_head_does_not_let_bad_input_through() -> None:
    signing_bytes(TRANSFER, CHAIN_A, b"warm")  # the pair's head is now kept
    with pytest.raises(ValueError):
        signing_bytes(TRANSFER, b"short", b"p")
    with pytest.raises(ValueError):
        signing_bytes(TRANSFER + b"\n", CHAIN_A, b"p")
    # A payload of another type takes the checked path: encode_value's refusal.
    with pytest.raises(EncodeError):
        signing_bytes(TRANSFER, CHAIN_A, bytearray(b"p"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "tag", [b"", b"transfer", b"veil/tx/transfer", b"VEIL/tx/v1", b"veil//v1", b"veil/tx/v1\n"]
)
def test_bad_domain_tags_are_refused(tag: bytes) -> None:
    with pytest.raises(ValueError):
        check_domain_tag(tag)


def test_chain_id_length_enforced(alice: SigningIdentity) -> None:
    with pytest.raises(ValueError):
        alice.sign(TRANSFER, b"short", b"payload")


def test_malformed_signature_or_key_is_false_not_an_exception(alice: SigningIdentity) -> None:
    sig = alice.sign(TRANSFER, CHAIN_A, b"p")
    assert not verify_signature(alice.public_key, TRANSFER, CHAIN_A, b"p", sig[:-1])
    assert not verify_signature(b"\xff" * 32, TRANSFER, CHAIN_A, b"p", sig)
    assert not verify_signature(alice.public_key[:31], TRANSFER, CHAIN_A, b"p", sig)


def test_key_file_round_trip_and_mode(tmp_path: Path, alice: SigningIdentity) -> None:
    path = tmp_path / "alice.key"
    alice.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningIdentity.load(path).public_key == alice.public_key


def test_key_file_is_never_overwritten(tmp_path: Path, alice: SigningIdentity) -> None:
    path = tmp_path / "alice.key"
    alice.save(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        SigningIdentity.generate().save(path)
    assert path.read_bytes() == before


def test_too_open_key_file_is_refused(tmp_path: Path, alice: SigningIdentity) -> None:
    path = tmp_path / "alice.key"
    alice.save(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="too open"):
        SigningIdentity.load(path)


def test_key_file_whose_public_key_does_not_match_the_seed_is_refused(
    tmp_path: Path, alice: SigningIdentity
) -> None:
    path = tmp_path / "swapped.key"
    alice.save(path)
    document = json.loads(path.read_text())
    document["public_key"] = SigningIdentity.from_seed(b"\x22" * 32).public_key.hex()
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match="does not match") as err:
        SigningIdentity.load(path)
    assert document["seed"] not in str(err.value)


def test_malformed_key_file_error_leaks_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    secret = "ab" * 31 + "zz"  # invalid hex that a naive parser would echo back
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(
            '{"kind": "veil-ed25519-signing-key", "version": 1, '
            f'"public_key": "00", "seed": "{secret}"}}'
        )
    with pytest.raises(KeyFileError) as err:
        SigningIdentity.load(path)
    assert secret not in str(err.value) and "ab" * 31 not in repr(err.value)


def _private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def test_an_unreadable_key_path_is_a_key_file_error_not_an_os_error(tmp_path: Path) -> None:
    """Start-up turns ``KeyFileError`` into one line; any other exception was a traceback.
    (Tests run as root, so EACCES is out of reach: a directory and a file used as a
    directory stand in for it.)"""
    directory = tmp_path / "key-dir"
    directory.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        SigningIdentity.load(directory)
    below_a_file = _private(tmp_path / "plain", b"{}") / "alice.key"
    with pytest.raises(KeyFileError, match="cannot read the key file: Not a directory"):
        SigningIdentity.load(below_a_file)


def test_undecodable_or_deeply_nested_key_file_is_malformed_and_not_echoed(
    tmp_path: Path,
) -> None:
    secret = b"\xff\xfe" + b"\x11" * 32
    for name, data in (("binary.key", secret), ("nested.key", b"[" * 100_000)):
        with pytest.raises(KeyFileError, match="malformed key file") as err:
            SigningIdentity.load(_private(tmp_path / name, data))
        assert "1111" not in str(err.value) and "\\x11" not in str(err.value)


def test_secret_never_in_repr_or_logs(
    alice: SigningIdentity, caplog: pytest.LogCaptureFixture
) -> None:
    seed_hex = (b"\x11" * 32).hex()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("veil.test").info("identity %s %r", alice, alice)
    assert seed_hex not in caplog.text
    assert seed_hex not in repr(alice) and seed_hex not in str(alice)
    assert alice.public_key.hex() in repr(alice)


def test_ed25519_key_problem_accepts_real_keys_and_refuses_unsignable_ones() -> None:
    assert ed25519_key_problem(SigningIdentity.generate().public_key) is None
    assert "32 bytes" in (ed25519_key_problem(bytes(31)) or "")
    order_4 = bytes(31) + b"\x80"
    identity_point = b"\x01" + bytes(31)
    off_curve = b"\x02" + bytes(31)  # y = 2: (y² − 1)/(d·y² + 1) is no square mod p
    for key in (bytes(32), order_4, identity_point, off_curve, b"\xff" * 32):
        assert ed25519_key_problem(key) is not None, key.hex()


def test_a_libsodium_that_takes_torsion_points_for_keys_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CVE-2025-69277: libsodium before its fix took B + T2 as of prime order. The
    import-time check tells this build from one with the fix."""
    assert identity._subgroup_check_is_sound()
    monkeypatch.setattr(identity, "crypto_core_ed25519_is_valid_point", lambda point: True)
    assert not identity._subgroup_check_is_sound()
