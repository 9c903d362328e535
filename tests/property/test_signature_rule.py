"""ledger.signature_rule: the cofactored ed25519 rule, its spec, and the C batch.

Every node must accept exactly the same signatures, whichever path it takes
(libsodium's fast path, the C single or batch check, or the spec without the
native module), or nodes split. The rule differs from libsodium only in an R
with a torsion component, which only the key's holder can make; these tests
craft such signatures, and each malformed case the rule refuses, from
libsodium's group operations, and check that every path gives the spec's answer.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import (
    crypto_core_ed25519_add,
    crypto_core_ed25519_scalar_add,
    crypto_core_ed25519_scalar_mul,
    crypto_core_ed25519_scalar_reduce,
    crypto_core_ed25519_sub,
    crypto_scalarmult_ed25519_base_noclamp,
    crypto_scalarmult_ed25519_noclamp,
    crypto_sign_open,
)
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey

from ledger import signature_rule
from ledger.signature_rule import (
    ELL,
    FIELD_P,
    IDENTITY,
    Triple,
    cofactored_reference,
    verify,
    verify_batch,
)

# privacy/msm/veil_ed25519.h
SIG_VALID = 0
SIG_INVALID = 1

# Without the C module the rule runs on the spec alone; CI (VEIL_MSM_REQUIRE_NATIVE=1)
# runs these anyway, so they fail there rather than skip.
native = pytest.mark.skipif(
    not signature_rule.NATIVE_BATCH and os.environ.get("VEIL_MSM_REQUIRE_NATIVE") != "1",
    reason="the native signature batch (privacy/msm/_native) is not built",
)

# --- group helpers ------------------------------------------------------------


def scalar(value: int) -> bytes:
    return (value % ELL).to_bytes(32, "little")


def times_base(value: int) -> bytes:
    return crypto_scalarmult_ed25519_base_noclamp(scalar(value))


def times_eight(point: bytes) -> bytes:
    for _ in range(3):
        point = crypto_core_ed25519_add(point, point)
    return point


def challenge(r: bytes, public_key: bytes, message: bytes) -> bytes:
    return crypto_core_ed25519_scalar_reduce(hashlib.sha512(r + public_key + message).digest())


def equation_holds_mod_torsion(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """[8](s·B − k·A − R) = O alone, as 8s·B − k·8A = 8R, without the rule's encoding
    checks: shows that a refusal below comes from those checks, not the equation."""
    r = signature[:32]
    s = int.from_bytes(signature[32:], "little") % ELL
    k = int.from_bytes(challenge(r, public_key, message), "little")
    eight_s_b = times_eight(times_base(s)) if s else IDENTITY
    eight_a = times_eight(public_key)
    k_eight_a = (
        crypto_scalarmult_ed25519_noclamp(scalar(k), eight_a)
        if k and eight_a != IDENTITY
        else IDENTITY
    )
    return crypto_core_ed25519_sub(eight_s_b, k_eight_a) == times_eight(r)


def response(nonce: int, k: bytes, secret: int) -> bytes:
    """s = r + k·a mod ℓ."""
    return crypto_core_ed25519_scalar_add(
        scalar(nonce), crypto_core_ed25519_scalar_mul(k, scalar(secret))
    )


def add_to_r(signature: bytes, point: bytes) -> bytes:
    """What anyone can do to a signature: move R by a point, s unchanged."""
    return crypto_core_ed25519_add(signature[:32], point) + signature[32:]


def holder_sign(secret: int, message: bytes, nonce: int, torsion: bytes = IDENTITY) -> bytes:
    """R = r·B + T, s = r + k·a: what the holder of a can make (T = O is honest)."""
    public_key = times_base(secret)
    r = crypto_core_ed25519_add(times_base(nonce), torsion)
    return r + response(nonce, challenge(r, public_key, message), secret)


def libsodium_accepts(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        crypto_sign_open(signature + message, public_key)
    except BadSignatureError:
        return False
    return True


def native_single(triple: Triple, weight: int = 1) -> bool:
    status, _ = signature_rule._native_batch([triple], weight.to_bytes(16, "little"))
    return status == SIG_VALID


def native_batch_status(triples: Sequence[Triple]) -> int:
    status, _ = signature_rule._native_batch(triples, os.urandom(16 * len(triples)))
    return status


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def with_s(signature: bytes, s: int) -> bytes:
    return signature[:32] + s.to_bytes(32, "little")


# --- the points of order dividing 8 ------------------------------------------

ORDER_8 = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")


def _multiples(point: bytes) -> list[bytes]:
    out = [IDENTITY]
    for _ in range(7):
        out.append(crypto_core_ed25519_add(out[-1], point))
    return out


TORSION = _multiples(ORDER_8)  # TORSION[j] = j·T8
NONZERO_TORSION = TORSION[1:]
# Non-canonical (y ≥ p) or "negative zero" (x = 0, sign bit set) encodings of torsion points.
NONCANONICAL_SMALL = (
    [(FIELD_P + c).to_bytes(32, "little") for c in (0, 1)]
    + [((FIELD_P + c) | (1 << 255)).to_bytes(32, "little") for c in (0, 1)]
    + [
        (1 | (1 << 255)).to_bytes(32, "little"),  # y = 1
        ((FIELD_P - 1) | (1 << 255)).to_bytes(32, "little"),  # y = −1
    ]
)
# y ≥ p encodings of points not of small order (y = c on the curve for these c).
NONCANONICAL_LARGE = [(FIELD_P + c).to_bytes(32, "little") for c in (3, 4, 5, 6, 9, 10, 14, 18)]
# y with no x on the curve.
OFF_CURVE = [c.to_bytes(32, "little") for c in (2, 7, 8, 11, 12, 13, 17)]

SECRETS = [
    int.from_bytes(hashlib.sha512(b"veil-sig-rule" + bytes([i])).digest(), "little") % ELL
    for i in range(4)
]


def test_the_torsion_points_are_the_eight_known_encodings() -> None:
    """T8 has order exactly 8, and its multiples are libsodium's canonical small-order list."""
    assert times_eight(ORDER_8) == IDENTITY
    assert crypto_core_ed25519_add(TORSION[2], TORSION[2]) != IDENTITY  # 4·T8 ≠ O
    assert {p.hex() for p in TORSION} == {
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    }


# --- 1. RFC 8032 section 7.1 ---------------------------------------------------

RFC8032 = [
    (  # TEST 1
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (  # TEST 2
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (  # TEST 3
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]
RFC_TRIPLES = [
    (bytes.fromhex(pk), bytes.fromhex(msg), bytes.fromhex(sig)) for _, pk, msg, sig in RFC8032
]


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors_pass_every_path(
    secret: str, public: str, message: str, signature: str
) -> None:
    """The published vectors, reproduced by libsodium, are valid under the rule."""
    key = SigningKey(bytes.fromhex(secret))
    assert bytes(key.verify_key).hex() == public
    assert key.sign(bytes.fromhex(message)).signature.hex() == signature
    triple = (bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature))
    assert cofactored_reference(*triple)
    assert verify(*triple)
    assert verify_batch([triple]) == [True]


def test_rfc8032_vectors_pass_together() -> None:
    assert verify_batch(RFC_TRIPLES) == [True, True, True]


@native
def test_rfc8032_vectors_pass_the_native_check() -> None:
    for triple in RFC_TRIPLES:
        assert native_single(triple)
    assert native_batch_status(RFC_TRIPLES) == SIG_VALID


# --- 2. honest signatures, and one flipped bit ------------------------------

seeds = st.binary(min_size=32, max_size=32)
messages = st.binary(max_size=64)
secrets = st.integers(1, ELL - 1)
nonces = st.integers(1, ELL - 1)


def _honest(seed: bytes, message: bytes) -> Triple:
    key = SigningKey(seed)
    return bytes(key.verify_key), message, key.sign(message).signature


@given(seed=seeds, message=messages, secret=secrets, nonce=nonces)
def test_honest_signatures_pass(seed: bytes, message: bytes, secret: int, nonce: int) -> None:
    """libsodium's own signatures and ones built from the group operations both pass."""
    crafted = (times_base(secret), message, holder_sign(secret, message, nonce))
    for triple in (_honest(seed, message), crafted):
        assert libsodium_accepts(*triple)
        assert cofactored_reference(*triple)
        assert verify(*triple)
    assert verify_batch([_honest(seed, message), crafted]) == [True, True]


flip_targets = st.tuples(st.sampled_from(["message", "R", "s"]), st.integers(0, 2**16))


def _flipped(triple: Triple, target: tuple[str, int]) -> Triple:
    public_key, message, signature = triple
    where, bit = target
    if where == "message":
        return public_key, flip(message, bit % (8 * len(message))), signature
    if where == "R":
        return public_key, message, flip(signature, bit % 256)
    return public_key, message, flip(signature, 256 + bit % 256)


@given(seed=seeds, message=st.binary(min_size=1, max_size=64), target=flip_targets)
def test_a_flipped_bit_fails(seed: bytes, message: bytes, target: tuple[str, int]) -> None:
    honest = _honest(seed, message)
    bad = _flipped(honest, target)
    assert not cofactored_reference(*bad)
    assert not verify(*bad)
    assert verify_batch([bad]) == [False]
    assert verify_batch([honest, bad, honest]) == [True, False, True]


@native
@given(seed=seeds, message=st.binary(min_size=1, max_size=64), target=flip_targets)
def test_native_agrees_on_honest_and_flipped(
    seed: bytes, message: bytes, target: tuple[str, int]
) -> None:
    honest = _honest(seed, message)
    bad = _flipped(honest, target)
    assert native_single(honest)
    assert native_single(bad) == cofactored_reference(*bad)
    assert native_batch_status([honest, honest]) == SIG_VALID
    assert native_batch_status([honest, bad]) == SIG_INVALID
    # The sum alone, at any size (below MIN_BATCH too): what verify_batch builds on.
    assert signature_rule.sum_holds([honest])
    assert not signature_rule.sum_holds([honest, bad])


# --- 3. torsion in R: the holder can add it, nobody else can ----------------


@pytest.mark.parametrize("j", range(1, 8))
@given(secret=secrets, message=messages, nonce=nonces)
def test_the_holder_s_torsion_r_passes_the_rule_not_libsodium(
    j: int, secret: int, message: bytes, nonce: int
) -> None:
    """R = r·B + j·T8 with s = r + k·a: libsodium's exact equation refuses it, the
    cofactored one takes it (the one place the two rules differ)."""
    public_key = times_base(secret)
    triple = (public_key, message, holder_sign(secret, message, nonce, TORSION[j]))
    assert not libsodium_accepts(*triple)
    assert cofactored_reference(*triple)
    assert verify(*triple)
    assert verify_batch([triple]) == [True]
    honest = (public_key, message, holder_sign(secret, message, nonce))
    other = _honest(secret.to_bytes(32, "little"), message)
    assert verify_batch([honest, triple, other]) == [True, True, True]


@native
@pytest.mark.parametrize("j", range(1, 8))
@given(secret=secrets, message=messages, nonce=nonces)
def test_native_takes_the_holder_s_torsion_r_whatever_the_weights(
    j: int, secret: int, message: bytes, nonce: int
) -> None:
    """A weight kills torsion only when 8 divides it: the C check must not depend on it
    (weights 1..8 cover every residue mod 8, then random ones)."""
    public_key = times_base(secret)
    triple = (public_key, message, holder_sign(secret, message, nonce, TORSION[j]))
    for weight in range(1, 9):
        assert native_single(triple, weight)
    honest = (public_key, message, holder_sign(secret, message, nonce))
    other = _honest(secret.to_bytes(32, "little"), message)
    for _ in range(4):
        assert native_batch_status([honest, triple, other]) == SIG_VALID


@pytest.mark.parametrize("j", range(1, 8))
@given(seed=seeds, message=messages)
def test_a_third_party_cannot_add_torsion_to_r(j: int, seed: bytes, message: bytes) -> None:
    """k hashes R's bytes: R + T changes k, so the equation fails by (k − k′)·A."""
    public_key, _, signature = _honest(seed, message)
    moved = (public_key, message, add_to_r(signature, TORSION[j]))
    assert not cofactored_reference(*moved)
    assert not verify(*moved)
    assert verify_batch([moved]) == [False]
    assert verify_batch([(public_key, message, signature), moved]) == [True, False]


@native
@pytest.mark.parametrize("j", range(1, 8))
@given(seed=seeds, message=messages)
def test_native_refuses_torsion_added_by_a_third_party(j: int, seed: bytes, message: bytes) -> None:
    public_key, _, signature = _honest(seed, message)
    moved = (public_key, message, add_to_r(signature, TORSION[j]))
    assert not native_single(moved)
    assert native_batch_status([(public_key, message, signature), moved]) == SIG_INVALID


# --- 4. what the rule refuses --------------------------------------------------


def _refused_by_every_path(triple: Triple) -> None:
    assert not cofactored_reference(*triple)
    assert not verify(*triple)
    assert verify_batch([triple]) == [False]
    honest = _honest(b"\x07" * 32, b"neighbour")
    assert verify_batch([honest, triple, honest]) == [True, False, True]


def _refused_by_native(triple: Triple) -> None:
    assert not native_single(triple)
    honest = _honest(b"\x07" * 32, b"neighbour")
    assert native_batch_status([honest, triple]) == SIG_INVALID


def _s_plus_ell_cases() -> list[Triple]:
    public_key, message, signature = _honest(b"\x01" * 32, b"s + l")
    s = int.from_bytes(signature[32:], "little")
    multiples = range(1, (2**256 - 1 - s) // ELL + 1)
    return [(public_key, message, with_s(signature, s + m * ELL)) for m in multiples]


def _r_with_s_k_a(r: bytes, secret: int = SECRETS[0], message: bytes = b"m") -> Triple:
    """s = k·a: then s·B − k·A − R = −R, so the cofactored equation holds for any R of
    small order; only the encoding checks can refuse it."""
    public_key = times_base(secret)
    k = challenge(r, public_key, message)
    return public_key, message, r + crypto_core_ed25519_scalar_mul(k, scalar(secret))


S_PLUS_ELL = _s_plus_ell_cases()
SMALL_R = [_r_with_s_k_a(t) for t in TORSION]
NONCANONICAL_R = [_r_with_s_k_a(r) for r in NONCANONICAL_SMALL + NONCANONICAL_LARGE]
OFF_CURVE_R = [_r_with_s_k_a(r) for r in OFF_CURVE]
MALFORMED = S_PLUS_ELL + SMALL_R + NONCANONICAL_R + OFF_CURVE_R


def test_s_plus_ell_would_otherwise_pass() -> None:
    """s + m·ℓ is the same scalar mod ℓ: only the s < ℓ check refuses it."""
    assert len(S_PLUS_ELL) >= 14
    for triple in S_PLUS_ELL:
        assert equation_holds_mod_torsion(*triple)


def test_small_order_and_noncanonical_r_would_otherwise_pass() -> None:
    for triple in SMALL_R + NONCANONICAL_R[: len(NONCANONICAL_SMALL)]:
        assert equation_holds_mod_torsion(*triple)


@pytest.mark.parametrize("triple", MALFORMED)
def test_malformed_r_or_s_is_refused(triple: Triple) -> None:
    _refused_by_every_path(triple)
    assert not libsodium_accepts(*triple)


@native
@pytest.mark.parametrize("triple", MALFORMED)
def test_native_refuses_malformed_r_or_s(triple: Triple) -> None:
    _refused_by_native(triple)


def _key_cases() -> list[Triple]:
    """Keys the rule refuses (small order, or a non-canonical encoding of one),
    each with a signature the cofactored equation takes."""
    cases = []
    for key in TORSION + NONCANONICAL_SMALL:
        # A of small order: s = r makes s·B − k·A − R = −k·A, torsion.
        nonce = SECRETS[1]
        r = times_base(nonce)
        cases.append((key, b"small key", r + scalar(nonce)))
    return cases


KEY_CASES = _key_cases()


def _mixed_key_cases() -> list[Triple]:
    """A = a·B + T for each torsion point T: keys of large order, not prime order,
    with their holder's signature."""
    cases = []
    for t in NONZERO_TORSION:
        key = crypto_core_ed25519_add(times_base(SECRETS[2]), t)
        r = times_base(SECRETS[3])
        k = challenge(r, key, b"mixed key")
        cases.append((key, b"mixed key", r + response(SECRETS[3], k, SECRETS[2])))
    return cases


MIXED_KEY_CASES = _mixed_key_cases()


def test_bad_keys_would_otherwise_pass() -> None:
    for triple in KEY_CASES + MIXED_KEY_CASES:
        assert equation_holds_mod_torsion(*triple)


@pytest.mark.parametrize("triple", KEY_CASES)
def test_keys_of_small_order_or_not_canonical_are_refused(triple: Triple) -> None:
    _refused_by_every_path(triple)


@pytest.mark.parametrize("triple", MIXED_KEY_CASES)
def test_a_key_with_torsion_is_a_key_like_any_other(triple: Triple) -> None:
    """The rule asks no subgroup check of A: libsodium's own accepted some points
    with torsion before CVE-2025-69277's fix, so nodes on different builds would
    split; the cofactored equation makes the torsion harmless."""
    assert cofactored_reference(*triple)
    assert verify(*triple)
    assert verify_batch([triple]) == [True]


@native
@pytest.mark.parametrize("triple", MIXED_KEY_CASES)
def test_native_takes_a_key_with_torsion(triple: Triple) -> None:
    assert signature_rule._native_one(*triple)
    assert native_single(triple)
    honest = _honest(b"\x07" * 32, b"neighbour")
    assert native_batch_status([honest, triple] * 4) == SIG_VALID


@pytest.mark.parametrize("key", NONCANONICAL_LARGE)
def test_noncanonical_keys_of_large_order_are_refused(key: bytes) -> None:
    triple = (key, b"m", times_base(SECRETS[0]) + scalar(SECRETS[1]))
    _refused_by_every_path(triple)


def test_a_mixed_order_key_libsodium_takes_the_rule_takes() -> None:
    """libsodium checks A against the small-order list only: with A = a·B + T8 and
    8 | k its exact equation holds, so chains signed before the cofactored rule
    hold such signatures, and the rule must take them to replay those chains."""
    secret, nonce = SECRETS[0], SECRETS[1]
    key = crypto_core_ed25519_add(times_base(secret), ORDER_8)
    r = times_base(nonce)
    counter = 0
    while True:
        message = counter.to_bytes(4, "little")
        k = challenge(r, key, message)
        if int.from_bytes(k, "little") % 8 == 0:
            break
        counter += 1
    triple = (key, message, r + response(nonce, k, secret))
    assert libsodium_accepts(*triple)
    assert cofactored_reference(*triple)
    assert verify(*triple)
    assert verify_batch([triple]) == [True]


@pytest.mark.parametrize(
    ("key_length", "signature_length"), [(31, 64), (33, 64), (0, 64), (32, 63), (32, 65), (32, 0)]
)
def test_wrong_lengths_are_refused(key_length: int, signature_length: int) -> None:
    """Extra bytes after a valid key or signature do not make it pass."""
    key, message, signature = _honest(b"\x02" * 32, b"lengths")
    padded_key = (key + b"\x00")[:key_length]
    padded_signature = (signature + b"\x00")[:signature_length]
    _refused_by_every_path((padded_key, message, padded_signature))


# --- 5. differential: batch, single and spec on mixtures ---------------------

KINDS = [
    "honest",
    "libsodium",
    "torsion_r",
    "third_party_torsion",
    "flip_message",
    "flip_r",
    "flip_s",
    "s_plus_ell",
    "small_order_r",
    "noncanonical_r",
    "off_curve_r",
    "random_signature",
    "other_message",
    "other_key",
    "small_order_key",
    "mixed_order_key",
    "short_signature",
]


def build_case(kind: str, secret: int, message: bytes, nonce: int, param: int) -> Triple:
    key = times_base(secret)
    torsion = TORSION[1 + param % 7]
    honest = holder_sign(secret, message, nonce)
    if kind == "honest":
        return key, message, honest
    if kind == "libsodium":
        return _honest(secret.to_bytes(32, "little"), message)
    if kind == "torsion_r":
        return key, message, holder_sign(secret, message, nonce, torsion)
    if kind == "third_party_torsion":
        return key, message, add_to_r(honest, torsion)
    if kind == "flip_message":
        return key, flip(message, param % (8 * len(message))) if message else b"\x00", honest
    if kind == "flip_r":
        return key, message, flip(honest, param % 256)
    if kind == "flip_s":
        return key, message, flip(honest, 256 + param % 256)
    if kind == "s_plus_ell":
        return key, message, with_s(honest, int.from_bytes(honest[32:], "little") + ELL)
    if kind == "small_order_r":
        return _r_with_s_k_a(TORSION[param % 8], secret, message)
    if kind == "noncanonical_r":
        encodings = NONCANONICAL_SMALL + NONCANONICAL_LARGE
        return _r_with_s_k_a(encodings[param % len(encodings)], secret, message)
    if kind == "off_curve_r":
        return _r_with_s_k_a(OFF_CURVE[param % len(OFF_CURVE)], secret, message)
    if kind == "random_signature":
        return key, message, hashlib.sha512(param.to_bytes(8, "little") + message).digest()
    if kind == "other_message":
        return key, message + b"!", honest
    if kind == "other_key":
        return times_base(2 * secret), message, honest  # 2a ≠ a, and 2a ≠ 0 mod ℓ
    if kind == "small_order_key":
        return TORSION[param % 8], message, times_base(nonce) + scalar(nonce)
    if kind == "mixed_order_key":
        mixed = crypto_core_ed25519_add(key, torsion)
        r = times_base(nonce)
        k = challenge(r, mixed, message)
        return mixed, message, r + response(nonce, k, secret)
    if kind == "short_signature":
        return key, message, honest[: param % 64]
    raise AssertionError(kind)


cases = st.tuples(
    st.sampled_from(KINDS),
    st.sampled_from(SECRETS) | secrets,  # a few keys recur, so the C merges their terms
    st.binary(max_size=40),
    nonces,
    st.integers(0, 2**32),
)
mixtures = st.lists(cases, max_size=10).map(lambda drawn: [build_case(*case) for case in drawn])


@settings(max_examples=200, deadline=None)
@given(triples=mixtures)
def test_verify_batch_and_verify_equal_the_spec(triples: list[Triple]) -> None:
    expected = [cofactored_reference(*t) for t in triples]
    assert verify_batch(triples) == expected
    assert [verify(*t) for t in triples] == expected
    for triple, ok in zip(triples, expected, strict=True):
        if libsodium_accepts(*triple):
            assert ok  # the rule takes all libsodium takes, whatever the key


@settings(max_examples=100, deadline=None)
@given(triples=mixtures)
def test_without_the_native_module_verify_and_batches_equal_the_spec(
    triples: list[Triple],
) -> None:
    """A node whose build has no libdecaf takes libsodium's answer where it
    accepts and the spec's where it refuses: the same rule."""
    expected = [cofactored_reference(*t) for t in triples]
    patch = pytest.MonkeyPatch()
    patch.setattr(signature_rule, "_NATIVE", None)
    try:
        assert [verify(*t) for t in triples] == expected
        assert verify_batch(triples) == expected
    finally:
        patch.undo()


@native
@settings(max_examples=200, deadline=None)
@given(triples=mixtures)
def test_native_the_one_check_equals_the_spec(triples: list[Triple]) -> None:
    """``veil_ed25519_verify_one`` (libdecaf's tables for its base, no weights)."""
    checked = [t for t in triples if len(t[0]) == 32 and len(t[2]) == 64]
    assert [signature_rule._native_one(*t) for t in checked] == [
        cofactored_reference(*t) for t in checked
    ]


@native
@settings(max_examples=200, deadline=None)
@given(triples=mixtures)
def test_native_single_and_batch_equal_the_spec(triples: list[Triple]) -> None:
    """The C reads 32-byte keys and 64-byte signatures only (``verify_batch``
    filters the rest); the batch check itself, not the one-by-one fallback, must
    be valid exactly when every signature is."""
    checked = [t for t in triples if len(t[0]) == 32 and len(t[2]) == 64]
    expected = [cofactored_reference(*t) for t in checked]
    assert [native_single(t) for t in checked] == expected
    if checked:
        assert (native_batch_status(checked) == SIG_VALID) == all(expected)


# --- 6. batches of 64 ---------------------------------------------------------


def _sixty_four() -> list[Triple]:
    """16 keys, 4 signatures each: repeated keys share one term in the C sum."""
    out = []
    for i in range(64):
        seed = hashlib.sha256(b"veil-batch" + bytes([i % 16])).digest()
        out.append(_honest(seed, b"tx %d" % i))
    return out


BATCH = _sixty_four()
TORSION_SECRET = SECRETS[3]
TORSION_SIGNED = (
    times_base(TORSION_SECRET),
    b"torsion tx",
    holder_sign(TORSION_SECRET, b"torsion tx", SECRETS[0], ORDER_8),
)


@pytest.mark.parametrize("index", [0, 17, 64])
def test_64_honest_and_one_torsion_r_from_its_holder_pass(index: int) -> None:
    batch = [*BATCH[:index], TORSION_SIGNED, *BATCH[index:]]
    assert verify_batch(batch) == [True] * 65


@native
def test_the_native_batch_of_64_with_a_torsion_r_passes_for_any_weights() -> None:
    batch = [*BATCH, TORSION_SIGNED]
    for _ in range(16):
        assert native_batch_status(batch) == SIG_VALID


def _forge(kind: str, triple: Triple) -> Triple:
    key, message, signature = triple
    if kind == "other_message":
        return key, message + b"!", signature
    if kind == "third_party_torsion":
        return key, message, add_to_r(signature, ORDER_8)
    if kind == "s_plus_one":
        return key, message, with_s(signature, (int.from_bytes(signature[32:], "little") + 1) % ELL)
    if kind == "s_plus_ell":
        return key, message, with_s(signature, int.from_bytes(signature[32:], "little") + ELL)
    return key, message, times_base(SECRETS[0]) + signature[32:]  # "other_r"


FORGERIES = ["other_message", "third_party_torsion", "s_plus_one", "s_plus_ell", "other_r"]


@pytest.mark.parametrize("kind", FORGERIES)
@pytest.mark.parametrize("index", [0, 40, 63])
def test_a_forgery_in_64_fails_only_its_index(kind: str, index: int) -> None:
    batch = list(BATCH)
    batch[index] = _forge(kind, batch[index])
    assert verify_batch(batch) == [i != index for i in range(64)]


@native
@pytest.mark.parametrize("kind", FORGERIES)
def test_the_native_batch_of_64_with_a_forgery_fails(kind: str) -> None:
    batch = list(BATCH)
    batch[40] = _forge(kind, batch[40])
    assert native_batch_status(batch) == SIG_INVALID
    assert not native_single(batch[40])


@pytest.mark.parametrize("failing", ["veil_ed25519_self_test", "veil_msm_self_test"])
def test_a_module_whose_self_test_fails_is_not_used(
    failing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches sum on veil_msm.c's field arithmetic and rescaling: if either
    self-test fails on this libdecaf, the rule runs on the spec instead."""

    class Lib:
        def veil_ed25519_verify_one(self) -> int:
            return 0

        def veil_ed25519_self_test(self) -> int:
            return int(failing != "veil_ed25519_self_test")

        def veil_msm_self_test(self) -> int:
            return int(failing != "veil_msm_self_test")

    class Module:
        lib = Lib()

    monkeypatch.setattr("importlib.import_module", lambda _name: Module())
    assert signature_rule._load_native() is None
    monkeypatch.setattr(Lib, failing, lambda _self: 1)
    assert signature_rule._load_native() is not None
