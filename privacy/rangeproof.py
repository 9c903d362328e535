"""Bulletproofs range proofs (aggregated), byte-compatible with dalek-cryptography/bulletproofs.

Notation follows the paper and dalek: ``n`` bits, ``m`` parties (values),
``N = n·m``; ``G``/``H`` the Pedersen generators, ``G_vec``/``H_vec`` the vector
generators; challenges ``y, z, x, w`` and the inner-product challenges ``u_k``.

Proof bytes (dalek ``RangeProof::to_bytes``)::

    A || S || T_1 || T_2 || t_x || t_x_blinding || e_blinding || L_0 || R_0 || … || a || b

``32·(9 + 2·log2(N))`` bytes. Parsing is strict: exact length, canonical scalars,
valid canonical point encodings (RFC 9496: bit 255 set is refused, which the
bundled libsodium alone would accept), and no identity among A, S, T_1, T_2, L_k, R_k (dalek's
``validate_and_append_point``). Commitments may be the identity, as in dalek.

Verification is dalek's single "mega-check": the range-proof equation and the
inner-product argument folded into one multiscalar product over
``A, S, T_1, T_2, L_k, R_k, V_j, G, H, G_vec, H_vec`` (the IPP generator
scalars come from the ``s`` vector built with the product trick, not by
folding generators), combined with a random ``c``. Its cost is one
libsodium multiplication per distinct point: ``2N + 2·log2(N) + m + 6``
terms, of which ``A`` (scalar 1) is an addition and ``G`` a fixed-base
multiplication. ``batch_verify`` adds many such equations with random weights
from the OS CSPRNG and merges every shared point, so the ``2N + 2`` generator
terms are paid once per batch and each proof adds ``2·log2(N) + m + 4``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, replace

from privacy.generators import PEDERSEN_G, PEDERSEN_H, bulletproof_generators
from privacy.group import (
    IDENTITY,
    ORDER,
    POINT_BYTES,
    GroupError,
    add,
    all_valid_points,
    has_high_bit,
    is_valid_point,
    mul,
    mul_base,
    multiscalar_mul,
    point_from_bytes,
    random_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
    sub,
)
from privacy.pedersen import commit
from privacy.transcript import TRANSCRIPT_KINDS, Transcript, TranscriptError, make_transcript

DEFAULT_LABEL = b"veil/rangeproof/v1"
SUPPORTED_BITS = (8, 16, 32, 64)
SUPPORTED_PARTIES = (1, 2, 4, 8, 16)

_REASONS = ("MALFORMED", "INVALID", "UNSUPPORTED")


class RangeProofError(ValueError):
    """A range proof that is refused. ``reason`` is MALFORMED, INVALID or UNSUPPORTED."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in _REASONS:
            raise ValueError(f"unknown range-proof error reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RangeStatement:
    """The claim "each commitment hides a value in [0, 2^bits)", with its proof."""

    commitments: tuple[bytes, ...]
    proof: bytes
    bits: int
    transcript: str = "default"
    label: bytes = DEFAULT_LABEL


@dataclass(frozen=True, slots=True)
class RangeProof:
    """A parsed proof; points are validated encodings, scalars canonical ints."""

    A: bytes
    S: bytes
    T_1: bytes
    T_2: bytes
    t_x: int
    t_x_blinding: int
    e_blinding: int
    L_vec: tuple[bytes, ...]
    R_vec: tuple[bytes, ...]
    a: int
    b: int

    def to_bytes(self) -> bytes:
        parts = [self.A, self.S, self.T_1, self.T_2]
        parts += [scalar_to_bytes(s) for s in (self.t_x, self.t_x_blinding, self.e_blinding)]
        for left, right in zip(self.L_vec, self.R_vec, strict=True):
            parts += [left, right]
        parts += [scalar_to_bytes(self.a), scalar_to_bytes(self.b)]
        return b"".join(parts)


def proof_size(bits: int, parties: int) -> int:
    """Bytes in a proof for ``bits`` × ``parties``: ``32·(9 + 2·log2(bits·parties))``."""
    return 32 * (9 + 2 * ((bits * parties).bit_length() - 1))


def check_parameters(bits: int, parties: int) -> None:
    """Raise UNSUPPORTED unless ``bits`` and ``parties`` are allowed sizes."""
    # The type check comes first: 8.0 == 8, and a float would then fail deep in
    # parsing with an AttributeError instead of this typed error.
    if not isinstance(bits, int) or isinstance(bits, bool) or bits not in SUPPORTED_BITS:
        raise RangeProofError("UNSUPPORTED", f"bit size {bits!r} not in {SUPPORTED_BITS}")
    if (
        not isinstance(parties, int)
        or isinstance(parties, bool)
        or parties not in SUPPORTED_PARTIES
    ):
        raise RangeProofError(
            "UNSUPPORTED", f"aggregation size {parties!r} not in {SUPPORTED_PARTIES}"
        )


def _proof_point(data: bytes, what: str) -> bytes:
    try:
        return point_from_bytes(data, allow_identity=False)
    except GroupError as err:
        raise RangeProofError("MALFORMED", f"{what}: {err}") from err


def _proof_scalar(data: bytes, what: str) -> int:
    try:
        return scalar_from_bytes(data)
    except GroupError as err:
        raise RangeProofError("MALFORMED", f"{what}: {err}") from err


def parse_proof(data: bytes, bits: int, parties: int) -> RangeProof:
    """Strictly decode dalek's proof layout for ``bits`` × ``parties``."""
    return _parse_proof(data, bits, parties, check_points=True)


def _parse_proof(data: bytes, bits: int, parties: int, *, check_points: bool) -> RangeProof:
    """``parse_proof``; with ``check_points=False`` the libsodium validation of
    the points is left to the caller (lengths, identities and scalars are checked)."""
    check_parameters(bits, parties)
    if not isinstance(data, bytes | bytearray):
        raise RangeProofError("MALFORMED", "proof must be bytes")
    expected = proof_size(bits, parties)
    if len(data) != expected:
        raise RangeProofError(
            "MALFORMED", f"a {bits}×{parties} proof is {expected} bytes, got {len(data)}"
        )
    data = bytes(data)
    chunks = [data[k : k + 32] for k in range(0, expected, 32)]
    rounds = (len(chunks) - 9) // 2
    points = chunks[:4] + chunks[7:-2]
    scalars = [int.from_bytes(chunk, "little") for chunk in (*chunks[4:7], *chunks[-2:])]
    if (
        IDENTITY in points
        or not all(scalar < ORDER for scalar in scalars)
        or (check_points and not all_valid_points(points))
        # Deferred validation still refuses bit 255 here: libsodium's decoding
        # in the combined multiplication ignores that bit (see privacy.group).
        or any(map(has_high_bit, points))
    ):
        # Something is wrong: check part by part, in proof order, for a precise error.
        _check_proof_parts(chunks)
    t_x, t_x_blinding, e_blinding, a, b = scalars
    return RangeProof(
        chunks[0],
        chunks[1],
        chunks[2],
        chunks[3],
        t_x,
        t_x_blinding,
        e_blinding,
        tuple(chunks[7 : 7 + 2 * rounds : 2]),
        tuple(chunks[8 : 8 + 2 * rounds : 2]),
        a,
        b,
    )


def _check_proof_parts(chunks: list[bytes]) -> None:
    """Raise MALFORMED for the first bad point or scalar of a proof, in proof order."""
    rounds = (len(chunks) - 9) // 2
    for k, name in enumerate(("A", "S", "T_1", "T_2")):
        _proof_point(chunks[k], name)
    for k, name in enumerate(("t_x", "t_x_blinding", "e_blinding")):
        _proof_scalar(chunks[4 + k], name)
    for k in range(rounds):
        _proof_point(chunks[7 + 2 * k], f"L_{k}")
    for k in range(rounds):
        _proof_point(chunks[8 + 2 * k], f"R_{k}")
    _proof_scalar(chunks[-2], "a")
    _proof_scalar(chunks[-1], "b")
    raise RangeProofError("MALFORMED", "proof does not parse")


def _parse_commitments(commitments: Sequence[bytes], *, check_points: bool) -> tuple[bytes, ...]:
    parsed = []
    for j, raw in enumerate(commitments):
        if not isinstance(raw, bytes | bytearray):
            raise RangeProofError("MALFORMED", f"commitment {j} must be bytes")
        if not check_points and len(raw) == POINT_BYTES and not has_high_bit(raw):
            parsed.append(bytes(raw))
            continue
        try:
            parsed.append(point_from_bytes(bytes(raw)))
        except GroupError as err:
            raise RangeProofError("MALFORMED", f"commitment {j}: {err}") from err
    return tuple(parsed)


def _start_transcript(kind: str, label: bytes) -> Transcript:
    if kind not in TRANSCRIPT_KINDS:
        raise RangeProofError("UNSUPPORTED", f"transcript {kind!r} not in {TRANSCRIPT_KINDS}")
    if not isinstance(label, bytes | bytearray):
        raise RangeProofError("MALFORMED", "label must be bytes")
    return make_transcript(kind, bytes(label))


def _rangeproof_domain_sep(transcript: Transcript, bits: int, commitments: Sequence[bytes]) -> None:
    """dalek: ``dom-sep = "rangeproof v1"``, ``n``, ``m``, then every ``V``."""
    transcript.append_message(b"dom-sep", b"rangeproof v1")
    transcript.append_u64(b"n", bits)
    transcript.append_u64(b"m", len(commitments))
    for commitment in commitments:
        transcript.append_point(b"V", commitment)


def _powers(base: int, count: int) -> list[int]:
    out = [1] * count
    acc = 1
    for i in range(1, count):
        acc = acc * base % ORDER
        out[i] = acc
    return out


def _delta(bits: int, parties: int, y: int, z: int, y_minus_1_inv: int | None) -> int:
    """δ(y, z) = (z − z²)·Σ_{i<N} y^i − z³·(2^n − 1)·Σ_{j<m} z^j.

    ``Σ y^i`` is the geometric sum ``(y^N − 1)/(y − 1)``; the caller supplies
    ``1/(y − 1)`` from its batch inversion (``None`` when ``y = 1``).
    """
    total = bits * parties
    if y_minus_1_inv is None:
        sum_y = total % ORDER
    else:
        sum_y = (pow(y, total, ORDER) - 1) * y_minus_1_inv % ORDER
    sum_z = sum(_powers(z, parties)) % ORDER
    zz = z * z % ORDER
    return ((z - zz) * sum_y - zz * z % ORDER * ((1 << bits) - 1) * sum_z) % ORDER


# --- verification ------------------------------------------------------------


_GEN_STRIDE = max(SUPPORTED_BITS)
"""Generator ``i`` of party ``j`` is slot ``j·64 + i`` in the batch accumulators."""


@dataclass(frozen=True, slots=True)
class PreparedCheck:
    """One proof's verification equation, already multiplied by its random batch weight.

    The equation is ``Σ (gen_g[i] − z_offset)·G_vec[i] + Σ (gen_h[i] +
    z_offset)·H_vec[i] + g_scalar·G + h_scalar·H + Σ s·P over terms == identity``
    (dalek's mega-check with its random ``c``); ``G_vec``/``H_vec`` are in
    dalek's party-major order. The generator scalars may be unreduced (any
    integer congruent mod ℓ); ``z_offset`` (``weight·z``) is the part shared by
    every slot, added once per batch instead of once per slot.
    """

    bits: int
    parties: int
    gen_g: list[int]
    gen_h: list[int]
    z_offset: int
    g_scalar: int
    h_scalar: int
    terms: list[tuple[int, bytes]]
    unchecked: tuple[bytes, ...] = ()
    """Points of ``terms`` whose encodings are not validated yet (batch verification)."""


def _bit_products(seed: int, factors: Sequence[int]) -> list[int]:
    """``[seed · Π_{r : bit r of i is set} factors[r] for i < 2^len(factors)]``, unreduced.

    Two tables of reduced partial products (low bits from ``seed``, high bits
    from 1) built by doubling, then one multiplication per entry without a
    reduction: each entry is below ℓ², congruent to its value mod ℓ.
    """
    split = (len(factors) + 1) // 2
    low = [seed]
    for factor in factors[:split]:
        low += [v * factor % ORDER for v in low]
    high = [1]
    for factor in factors[split:]:
        high += [v * factor % ORDER for v in high]
    return [v * w for w in high for v in low]


def _batch_invert(values: Sequence[int]) -> list[int]:
    """Inverses mod ℓ of non-zero values with one exponentiation (Montgomery's trick)."""
    prefix = [1] * (len(values) + 1)
    for i, value in enumerate(values):
        prefix[i + 1] = prefix[i] * value % ORDER
    inv = pow(prefix[-1], -1, ORDER)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inv * prefix[i] % ORDER
        inv = inv * values[i] % ORDER
    return out


def prepare(statement: RangeStatement, weight: int = 1) -> PreparedCheck:
    """Parse a statement strictly, replay its transcript, and build ``weight ×`` its equation.

    dalek's ``c`` (which joins the range equation and the inner-product
    equation) is drawn here from the OS CSPRNG. Batch verification passes a
    random ``weight`` per statement, also from the OS CSPRNG.
    """
    return _prepare(statement, weight, check_points=True)


def _prepare(statement: RangeStatement, weight: int, *, check_points: bool) -> PreparedCheck:
    """``prepare``; with ``check_points=False`` the proof's and commitments' point
    encodings are not validated here but listed in ``unchecked`` (see
    ``combined_check_holds``)."""
    replayed = _replay(statement, check_points=check_points)
    inverses = _batch_invert(_inversion_inputs(replayed))
    return _build(replayed, weight, inverses, check_points=check_points)


@dataclass(frozen=True, slots=True)
class _Replayed:
    """A statement parsed and its transcript replayed: the challenges, before any weight."""

    bits: int
    commitments: tuple[bytes, ...]
    proof: RangeProof
    y: int
    z: int
    x: int
    w: int
    challenges: list[int]


def _replay(statement: RangeStatement, *, check_points: bool) -> _Replayed:
    """Parse ``statement`` strictly and replay its transcript (MALFORMED/UNSUPPORTED/INVALID)."""
    commitments_raw = statement.commitments
    if not isinstance(commitments_raw, tuple | list):
        raise RangeProofError("MALFORMED", "commitments must be a sequence of bytes")
    bits = statement.bits
    parties = len(commitments_raw)
    check_parameters(bits, parties)
    transcript = _start_transcript(statement.transcript, statement.label)
    commitments = _parse_commitments(commitments_raw, check_points=check_points)
    proof = _parse_proof(statement.proof, bits, parties, check_points=check_points)
    total = bits * parties

    try:
        _rangeproof_domain_sep(transcript, bits, commitments)
        transcript.validate_and_append_point(b"A", proof.A)
        transcript.validate_and_append_point(b"S", proof.S)
        y = transcript.challenge_scalar(b"y")
        z = transcript.challenge_scalar(b"z")
        transcript.validate_and_append_point(b"T_1", proof.T_1)
        transcript.validate_and_append_point(b"T_2", proof.T_2)
        x = transcript.challenge_scalar(b"x")
        transcript.append_scalar(b"t_x", proof.t_x)
        transcript.append_scalar(b"t_x_blinding", proof.t_x_blinding)
        transcript.append_scalar(b"e_blinding", proof.e_blinding)
        w = transcript.challenge_scalar(b"w")
        transcript.append_message(b"dom-sep", b"ipp v1")
        transcript.append_u64(b"n", total)
        challenges = []
        for left, right in zip(proof.L_vec, proof.R_vec, strict=True):
            transcript.validate_and_append_point(b"L", left)
            transcript.validate_and_append_point(b"R", right)
            challenges.append(transcript.challenge_scalar(b"u"))
    except TranscriptError as err:
        raise RangeProofError("MALFORMED", str(err)) from err
    if y == 0 or 0 in challenges:
        raise RangeProofError("INVALID", "zero challenge")
    return _Replayed(bits, commitments, proof, y, z, x, w, challenges)


def _inversion_inputs(replayed: _Replayed) -> list[int]:
    """The non-zero scalars ``_build`` needs inverted: ``y``, every ``u_k``, ``y − 1`` (or 1)."""
    y = replayed.y
    return [y, *replayed.challenges, y - 1 if y != 1 else 1]


def _build(
    replayed: _Replayed, weight: int, inverses: Sequence[int], *, check_points: bool
) -> PreparedCheck:
    """``weight ×`` the statement's equation, given the inverses of ``_inversion_inputs``."""
    bits = replayed.bits
    commitments = replayed.commitments
    proof = replayed.proof
    y, z, x, w = replayed.y, replayed.z, replayed.x, replayed.w
    challenges = replayed.challenges
    parties = len(commitments)
    c = random_scalar()
    weight %= ORDER
    rounds = len(challenges)
    y_inv = inverses[0]
    u_inv = inverses[1 : rounds + 1]
    y_minus_1_inv = inverses[rounds + 1] if y != 1 else None
    u_sq = [u * u % ORDER for u in challenges]
    u_inv_sq = [v * v % ORDER for v in u_inv]
    all_inv = 1
    for v in u_inv:
        all_inv = all_inv * v % ORDER

    a, b = proof.a, proof.b
    zz = z * z % ORDER
    wz = weight * z % ORDER
    # Every generator scalar is a product over the bits of its index i = j·n + k,
    # so each vector is built by ``_bit_products``: one multiplication per entry.
    #   gen_g[i] = −weight·a·s_i                                      (− wz)
    #   gen_h[i] = weight·z²·z^j·2^k·y^{−i} − weight·b·y^{−i}·s_{N−1−i}  (+ wz)
    # with s_i = Π_k u_k^{±1}; s_{N−1−i} = 1/s_i flips every u, and the
    # constant ∓wz of every slot is carried once as ``z_offset``.
    y_inv_sq = [y_inv]  # y^{−2^r}
    for _ in range(rounds - 1):
        y_inv_sq.append(y_inv_sq[-1] * y_inv_sq[-1] % ORDER)
    log_bits = bits.bit_length() - 1
    z_sq = z
    f_g: list[int] = []
    f_v: list[int] = []
    f_t: list[int] = []
    for r in range(rounds):
        f_g.append(u_sq[rounds - 1 - r])
        f_t.append(y_inv_sq[r] * u_inv_sq[rounds - 1 - r] % ORDER)
        if r < log_bits:
            f_v.append((y_inv_sq[r] << (1 << r)) % ORDER)
        else:
            f_v.append(y_inv_sq[r] * z_sq % ORDER)
            z_sq = z_sq * z_sq % ORDER
    all_u = 1
    for u in challenges:
        all_u = all_u * u % ORDER
    gen_g = _bit_products((ORDER - weight * a % ORDER) * all_inv % ORDER, f_g)
    vec_v = _bit_products(weight * zz % ORDER, f_v)
    vec_t = _bit_products(weight * b % ORDER * all_u % ORDER, f_t)
    gen_h = list(map(operator.sub, vec_v, vec_t))

    wc = weight * c % ORDER
    wcx = wc * x % ORDER
    terms: list[tuple[int, bytes]] = [
        (weight, proof.A),
        (weight * x % ORDER, proof.S),
        (wcx, proof.T_1),
        (wcx * x % ORDER, proof.T_2),
    ]
    terms += [(weight * q % ORDER, p) for q, p in zip(u_sq, proof.L_vec, strict=True)]
    terms += [(weight * q % ORDER, p) for q, p in zip(u_inv_sq, proof.R_vec, strict=True)]
    wcz = wc * zz % ORDER
    for commitment in commitments:
        terms.append((wcz, commitment))
        wcz = wcz * z % ORDER
    h_scalar = -(weight * proof.e_blinding + wc * proof.t_x_blinding) % ORDER
    g_scalar = (
        weight * w % ORDER * (proof.t_x - a * b)
        + wc * (_delta(bits, parties, y, z, y_minus_1_inv) - proof.t_x)
    ) % ORDER
    unchecked = () if check_points else tuple(point for _, point in terms)
    return PreparedCheck(bits, parties, gen_g, gen_h, wz, g_scalar, h_scalar, terms, unchecked)


class _UncheckedPointError(Exception):
    """A point a check left unchecked (``PreparedCheck.unchecked``) is not a valid encoding."""


_NOT_MULTIPLIED = (0, 1, ORDER - 1)
"""Scalars ``multiscalar_mul`` handles without a libsodium multiplication (skip, add, sub)."""


def combined_check_holds(checks: Sequence[PreparedCheck]) -> bool:
    """Σ check_k == identity, with every shared point multiplied once.

    Generator scalars are summed slot by slot (slot ``j·64 + i`` for party
    ``j``'s ``i``-th generator, whatever the proof's ``n``), other points are
    merged by encoding, so the cost is one multiplication per distinct point.

    A point listed in a check's ``unchecked`` is validated by libsodium's own
    decoding in its multiplication (the same check as ``is_valid_point``: the
    scalar is non-zero and the point not the identity, so only an invalid
    encoding fails), or explicitly when its merged scalar needs no
    multiplication; an invalid one raises ``_UncheckedPointError``.
    """
    if not checks:
        return True
    slots = _GEN_STRIDE * max(SUPPORTED_PARTIES)
    acc_g = [0] * slots
    acc_h = [0] * slots
    offsets: dict[tuple[int, int], int] = {}
    merged: dict[bytes, int] = {PEDERSEN_G: 0, PEDERSEN_H: 0}
    get = merged.get
    add_ints = operator.add
    top_party = 0
    for check in checks:
        bits = check.bits
        parties = check.parties
        top_party = max(top_party, parties)
        shape = (bits, parties)
        offsets[shape] = offsets.get(shape, 0) + check.z_offset
        gen_g = check.gen_g
        gen_h = check.gen_h
        for j in range(parties):
            lo = j * _GEN_STRIDE
            hi = lo + bits
            src = j * bits
            acc_g[lo:hi] = map(add_ints, acc_g[lo:hi], gen_g[src : src + bits])
            acc_h[lo:hi] = map(add_ints, acc_h[lo:hi], gen_h[src : src + bits])
        for scalar, point in check.terms:
            merged[point] = get(point, 0) + scalar
        merged[PEDERSEN_G] += check.g_scalar
        merged[PEDERSEN_H] += check.h_scalar
    for (bits, parties), offset in offsets.items():
        for j in range(parties):
            lo = j * _GEN_STRIDE
            for slot in range(lo, lo + bits):
                acc_g[slot] -= offset
                acc_h[slot] += offset
    # Proof points first: an encoding left unchecked by batch_verify fails in
    # libsodium's decoding before the generator terms are paid for.
    merged.pop(IDENTITY, None)
    unchecked = {point for check in checks for point in check.unchecked}
    scalars: list[int] = []
    points: list[bytes] = []
    for point, raw_scalar in merged.items():
        scalar = raw_scalar % ORDER
        if scalar in _NOT_MULTIPLIED and point in unchecked and not is_valid_point(point):
            raise _UncheckedPointError
        scalars.append(scalar)
        points.append(point)
    g_vec, h_vec = bulletproof_generators(_GEN_STRIDE, top_party)
    for acc, table in ((acc_g, g_vec), (acc_h, h_vec)):
        for slot, point in enumerate(table):
            scalar = acc[slot] % ORDER
            if scalar:
                scalars.append(scalar)
                points.append(point)
    try:
        total = multiscalar_mul(scalars, points)
    except GroupError as err:
        if not unchecked:
            raise
        raise _UncheckedPointError from err
    return total == IDENTITY


def verify_range(statement: RangeStatement) -> None:
    """Check one statement; raise RangeProofError (MALFORMED/UNSUPPORTED/INVALID) if refused.

    Never anything else: a group error is MALFORMED (parsing validates every
    point first, so none is expected).
    """
    try:
        holds = combined_check_holds([prepare(statement)])
    except GroupError as err:
        raise RangeProofError("MALFORMED", str(err)) from err
    if not holds:
        raise RangeProofError("INVALID", "range proof does not verify")


# --- proving -----------------------------------------------------------------


def _inner_product(left: Sequence[int], right: Sequence[int]) -> int:
    return sum(p * q for p, q in zip(left, right, strict=True)) % ORDER


def _sum_points(points: Sequence[bytes]) -> bytes:
    acc = IDENTITY
    for point in points:
        acc = add(acc, point)
    return acc


def _inner_product_proof(
    transcript: Transcript,
    *,
    w: int,
    h_factors: list[int],
    g_vec: Sequence[bytes],
    h_vec: Sequence[bytes],
    a_vec: list[int],
    b_vec: list[int],
) -> tuple[list[bytes], list[bytes], int, int]:
    """dalek's ``InnerProductProof::create`` with ``Q = w·G`` and ``G_factors = 1``.

    The folded generators are kept as ``factor · base``: folding then costs one
    multiplication and one addition per pair instead of two multiplications,
    and ``c·Q`` becomes a fixed-base multiplication.
    """
    n = len(a_vec)
    transcript.append_message(b"dom-sep", b"ipp v1")
    transcript.append_u64(b"n", n)
    a, b = a_vec, b_vec
    gp, hp = list(g_vec), list(h_vec)
    gf = [1] * n
    gfi = [1] * n
    hf = list(h_factors)
    hfi = [pow(f, -1, ORDER) for f in hf] if n > 1 else [1]
    l_out: list[bytes] = []
    r_out: list[bytes] = []
    while n > 1:
        n //= 2
        a_lo, a_hi = a[:n], a[n:]
        b_lo, b_hi = b[:n], b[n:]
        c_l = _inner_product(a_lo, b_hi)
        c_r = _inner_product(a_hi, b_lo)
        left = multiscalar_mul(
            [a_lo[i] * gf[n + i] for i in range(n)] + [b_hi[i] * hf[i] for i in range(n)],
            gp[n:] + hp[:n],
        )
        left = add(left, mul_base(c_l * w))
        right = multiscalar_mul(
            [a_hi[i] * gf[i] for i in range(n)] + [b_lo[i] * hf[n + i] for i in range(n)],
            gp[:n] + hp[n:],
        )
        right = add(right, mul_base(c_r * w))
        l_out.append(left)
        r_out.append(right)
        transcript.append_point(b"L", left)
        transcript.append_point(b"R", right)
        u = transcript.challenge_scalar(b"u")
        u_inv = pow(u, -1, ORDER)
        a = [(a_lo[i] * u + u_inv * a_hi[i]) % ORDER for i in range(n)]
        b = [(b_lo[i] * u_inv + u * b_hi[i]) % ORDER for i in range(n)]
        if n == 1:
            break
        u_sq = u * u % ORDER
        u_inv_sq = u_inv * u_inv % ORDER
        # G'_i = u⁻¹·G_i + u·G_{n+i} = (u⁻¹·gf_i)·(gp_i + (u²·gf_{n+i}/gf_i)·gp_{n+i}).
        gp = [add(gp[i], mul(u_sq * gf[n + i] % ORDER * gfi[i], gp[n + i])) for i in range(n)]
        hp = [add(hp[i], mul(u_inv_sq * hf[n + i] % ORDER * hfi[i], hp[n + i])) for i in range(n)]
        gf = [u_inv * gf[i] % ORDER for i in range(n)]
        gfi = [u * gfi[i] % ORDER for i in range(n)]
        hf = [u * hf[i] % ORDER for i in range(n)]
        hfi = [u_inv * hfi[i] % ORDER for i in range(n)]
    return l_out, r_out, a[0], b[0]


def _prove_unchecked(
    values: Sequence[int],
    blindings: Sequence[int],
    bits: int,
    transcript: Transcript,
) -> tuple[bytes, tuple[bytes, ...]]:
    """The prover without the range check on ``values`` (tests use it to show soundness)."""
    parties = len(values)
    total = bits * parties
    g_vec, h_vec = bulletproof_generators(bits, parties)
    gammas = [gamma % ORDER for gamma in blindings]
    commitments = tuple(commit(v, gamma) for v, gamma in zip(values, gammas, strict=True))
    _rangeproof_domain_sep(transcript, bits, commitments)

    a_l = [(v % ORDER >> k) & 1 for v in values for k in range(bits)]
    alpha = random_scalar()
    rho = random_scalar()
    s_l = [random_scalar() for _ in range(total)]
    s_r = [random_scalar() for _ in range(total)]
    # A = α·H + Σ a_L·G_vec + Σ (a_L − 1)·H_vec: bits are 0/1, so additions only.
    ones = _sum_points([g_vec[i] for i in range(total) if a_l[i]])
    zeros = _sum_points([h_vec[i] for i in range(total) if not a_l[i]])
    big_a = add(sub(ones, zeros), mul(alpha, PEDERSEN_H))
    big_s = multiscalar_mul([rho, *s_l, *s_r], [PEDERSEN_H, *g_vec, *h_vec])
    transcript.append_point(b"A", big_a)
    transcript.append_point(b"S", big_s)
    y = transcript.challenge_scalar(b"y")
    z = transcript.challenge_scalar(b"z")

    zz = z * z % ORDER
    y_pow = _powers(y, total)
    l0 = [(bit - z) % ORDER for bit in a_l]
    r0 = []
    r1 = []
    index = 0
    z_j = zz
    for _party in range(parties):
        for k in range(bits):
            yi = y_pow[index]
            r0.append((yi * (a_l[index] - 1 + z) + z_j * (1 << k)) % ORDER)
            r1.append(yi * s_r[index] % ORDER)
            index += 1
        z_j = z_j * z % ORDER
    t1 = (_inner_product(l0, r1) + _inner_product(s_l, r0)) % ORDER
    t2 = _inner_product(s_l, r1)
    tau1 = random_scalar()
    tau2 = random_scalar()
    t_1 = commit(t1, tau1)
    t_2 = commit(t2, tau2)
    transcript.append_point(b"T_1", t_1)
    transcript.append_point(b"T_2", t_2)
    x = transcript.challenge_scalar(b"x")

    l_vec = [(l0[i] + s_l[i] * x) % ORDER for i in range(total)]
    r_vec = [(r0[i] + r1[i] * x) % ORDER for i in range(total)]
    t_x = _inner_product(l_vec, r_vec)
    t_x_blinding = (tau1 * x + tau2 * x * x) % ORDER
    z_j = zz
    for gamma in gammas:
        t_x_blinding = (t_x_blinding + z_j * gamma) % ORDER
        z_j = z_j * z % ORDER
    e_blinding = (alpha + rho * x) % ORDER
    transcript.append_scalar(b"t_x", t_x)
    transcript.append_scalar(b"t_x_blinding", t_x_blinding)
    transcript.append_scalar(b"e_blinding", e_blinding)
    w = transcript.challenge_scalar(b"w")

    y_inv = pow(y, -1, ORDER)
    l_pts, r_pts, a, b = _inner_product_proof(
        transcript,
        w=w,
        h_factors=_powers(y_inv, total),
        g_vec=g_vec,
        h_vec=h_vec,
        a_vec=l_vec,
        b_vec=r_vec,
    )
    proof = RangeProof(
        big_a, big_s, t_1, t_2, t_x, t_x_blinding, e_blinding, tuple(l_pts), tuple(r_pts), a, b
    )
    return proof.to_bytes(), commitments


def prove_range(
    values: Sequence[int],
    blindings: Sequence[int],
    bits: int,
    *,
    transcript: str = "default",
    label: bytes = DEFAULT_LABEL,
) -> tuple[bytes, tuple[bytes, ...]]:
    """Prove each ``values[j]`` is in ``[0, 2^bits)``; returns (proof bytes, commitments).

    ``commitments[j] = values[j]·G + blindings[j]·H``. With ``transcript="merlin"``
    and ``label`` as dalek's ``Transcript::new(label)``, the proof is a dalek proof.
    """
    if len(values) != len(blindings):
        raise ValueError("need exactly one blinding per value")
    check_parameters(bits, len(values))
    for j, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"value {j} must be an int")
        if not 0 <= value < 1 << bits:
            raise RangeProofError("INVALID", f"value {j} is not in [0, 2^{bits})")
    for j, gamma in enumerate(blindings):
        if isinstance(gamma, bool) or not isinstance(gamma, int):
            raise TypeError(f"blinding {j} must be an int")
    return _prove_unchecked(values, blindings, bits, _start_transcript(transcript, label))


# --- batch verification --------------------------------------------------------


def _holds(checks: Sequence[PreparedCheck]) -> bool:
    """``combined_check_holds``, with a group error counted as a failing set.

    Parsing validated every point these checks multiply (or left it to
    ``_UncheckedPointError``, which still propagates), so none is expected; if one
    came, bisection would narrow it down to the statement that caused it.
    """
    try:
        return combined_check_holds(checks)
    except GroupError:
        return False


def _find_bad(checks: Sequence[tuple[int, PreparedCheck]], *, known_bad: bool) -> list[int]:
    """Indices of the failing checks, by bisection.

    Each check already carries its own secret random weight, drawn after all
    proofs were fixed, so every sub-sum is a sound randomised test (a bad
    subset passes with probability ≤ 1/ℓ). ``known_bad`` skips a test whose
    result is implied: when a failing set's left half passes, its right half fails.
    """
    if not checks:
        return []
    if not known_bad and _holds([check for _, check in checks]):
        return []
    if len(checks) == 1:
        return [checks[0][0]]
    half = len(checks) // 2
    left = _find_bad(checks[:half], known_bad=False)
    right = _find_bad(checks[half:], known_bad=not left)
    return left + right


def _first_bad(checks: Sequence[tuple[int, PreparedCheck]]) -> int | None:
    """Index of the first failing check in order, or ``None`` if all hold.

    A failing set is halved: if its left half holds, the first failure is in
    the right half, which is not tested again (it is known to fail). So a set
    of ``k`` checks costs at most ``1 + ⌈log2(k)⌉`` combined checks of shrinking
    size, however many of them are bad; and every check before the answer was
    in a half that held, so it is verified.
    """
    if not checks or _holds([check for _, check in checks]):
        return None
    while len(checks) > 1:
        half = len(checks) // 2
        left = checks[:half]
        checks = checks[half:] if _holds([check for _, check in left]) else left
    return checks[0][0]


def _prepare_in_batch(
    replayed: Sequence[tuple[int, _Replayed]],
) -> list[tuple[int, PreparedCheck]]:
    """Each replayed statement's equation with a fresh random weight, with one modular
    inversion for all of them (Montgomery's trick); point validation stays deferred."""
    inverses = _batch_invert([v for _, item in replayed for v in _inversion_inputs(item)])
    checks: list[tuple[int, PreparedCheck]] = []
    start = 0
    for index, item in replayed:
        end = start + len(item.challenges) + 2
        check = _build(item, random_scalar(), inverses[start:end], check_points=False)
        checks.append((index, check))
        start = end
    return checks


def _split_invalid_points(
    checks: Sequence[tuple[int, PreparedCheck]],
) -> tuple[list[tuple[int, PreparedCheck]], list[int]]:
    """(checks whose deferred points are all valid, now marked checked; indices of the rest)."""
    valid: list[tuple[int, PreparedCheck]] = []
    invalid: list[int] = []
    for index, check in checks:
        if all_valid_points(check.unchecked):
            valid.append((index, replace(check, unchecked=())))
        else:
            invalid.append(index)
    return valid, invalid


def batch_verify(
    statements: Sequence[RangeStatement], *, first_failure_only: bool = False
) -> list[int]:
    """Indices of the statements that do not verify (``[]`` when all are valid).

    Every statement is parsed and its transcript replayed first; malformed or
    unsupported ones are reported without sinking the batch. The rest are
    checked with one multiscalar equation: each statement's equation times a
    random weight from the OS CSPRNG, with every shared point (the
    ``G_vec``/``H_vec`` generators, ``G``, ``H``, repeated commitments) merged
    so it is multiplied once. If it fails, bisection finds the bad statements.

    With ``first_failure_only`` the answer is ``[i]`` for the lowest index ``i``
    that does not verify (or ``[]``), and the search stops there: a block is
    rejected by its first bad proof, so a block full of bad proofs costs about
    as much as a block with one (``1 + ⌈log2(k)⌉`` combined checks instead of a
    bisection down to every bad statement). Statements after the first
    malformed one are not even parsed. Full bisection is for the mempool, which
    attributes every fault.

    Never raises for a statement's content: anything refused is an index.
    """
    if first_failure_only:
        return _first_failure(statements)
    bad: list[int] = []
    replayed: list[tuple[int, _Replayed]] = []
    for index, statement in enumerate(statements):
        try:
            # The point encodings are validated where libsodium first decodes
            # them, in the combined multiplication, instead of once more here.
            replayed.append((index, _replay(statement, check_points=False)))
        except RangeProofError:
            bad.append(index)
    good = _prepare_in_batch(replayed)
    try:
        bad += _find_bad(good, known_bad=False)
    except _UncheckedPointError:
        # Some statement has an invalid point encoding (MALFORMED): find them
        # all, then check the rest as usual.
        valid, invalid = _split_invalid_points(good)
        bad += invalid + _find_bad(valid, known_bad=False)
    return sorted(bad)


def _first_failure(statements: Sequence[RangeStatement]) -> list[int]:
    """``batch_verify(statements, first_failure_only=True)``."""
    replayed: list[tuple[int, _Replayed]] = []
    malformed: int | None = None
    for index, statement in enumerate(statements):
        try:
            replayed.append((index, _replay(statement, check_points=False)))
        except RangeProofError:
            malformed = index  # only statements before it can fail first
            break
    checks = _prepare_in_batch(replayed)
    try:
        first = _first_bad(checks)
    except _UncheckedPointError:
        # The first statement with an invalid point fails; an earlier one may
        # fail its equation.
        valid, invalid = _split_invalid_points(checks)
        malformed = invalid[0]
        first = _first_bad([(i, check) for i, check in valid if i < malformed])
    if first is not None:
        return [first]
    return [] if malformed is None else [malformed]


def batch_verify_first_failure(statements: Sequence[RangeStatement]) -> list[int]:
    """``batch_verify(statements, first_failure_only=True)``, as a plain verifier function
    (what ``ledger.apply_block`` takes): ``[]`` or ``[lowest bad index]``."""
    return batch_verify(statements, first_failure_only=True)
