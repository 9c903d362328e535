"""Fiat–Shamir transcripts behind one interface: ``merlin`` (dalek interop) and ``default``.

``MerlinTranscript`` is byte-compatible with Rust merlin (STROBE-128 over a
pure-Python Keccak-f[1600]), so range proofs made with it are dalek proofs.

``DefaultTranscript`` is the fast one, built on hashlib's SHAKE256. Its exact
byte spec is in docs/privacy.md ("Default transcript byte spec"): the
transcript is one SHAKE256 stream over injectively framed records::

    record = op (1 byte) || LE32(len(label)) || label || LE64(len(data)) || data

starting with ``0x00 "veil/transcript/default/v1"`` (the versioned domain tag,
empty data) and ``0x01 "dom-sep" <label>``. ``append_message`` adds a ``0x01``
record; ``challenge_bytes(label, n)`` adds ``0x02 label LE64(n)`` and returns the
first ``n`` bytes of SHAKE256 over every record so far (the state continues,
so each later challenge also depends on this one).

Both kinds share the helpers dalek's ``TranscriptProtocol`` adds on top
(points, scalars, u64s, 64-byte wide challenge scalars).
"""

from __future__ import annotations

import functools
import hashlib
from abc import ABC, abstractmethod
from typing import Protocol

from privacy.group import IDENTITY, ORDER, scalar_from_wide, scalar_to_bytes
from privacy.merlin import Merlin

DEFAULT_TRANSCRIPT_TAG = b"veil/transcript/default/v1"
TRANSCRIPT_KINDS = ("merlin", "default")

_OP_INIT = 0x00
_OP_APPEND = 0x01
_OP_CHALLENGE = 0x02


class TranscriptError(ValueError):
    """A proof message the transcript refuses (dalek's ``validate_and_append_point``)."""


class Transcript(Protocol):
    """What the proofs need from a Fiat–Shamir transcript."""

    def append_message(self, label: bytes, message: bytes) -> None: ...

    def append_u64(self, label: bytes, value: int) -> None: ...

    def append_point(self, label: bytes, point: bytes) -> None: ...

    def validate_and_append_point(self, label: bytes, point: bytes) -> None: ...

    def append_scalar(self, label: bytes, scalar: int) -> None: ...

    def challenge_bytes(self, label: bytes, length: int) -> bytes: ...

    def challenge_scalar(self, label: bytes) -> int: ...


class _TranscriptOps(ABC):
    """dalek's ``TranscriptProtocol`` helpers over ``append_message``/``challenge_bytes``."""

    __slots__ = ()

    @abstractmethod
    def append_message(self, label: bytes, message: bytes) -> None:
        """Absorb ``message`` under ``label``."""

    @abstractmethod
    def challenge_bytes(self, label: bytes, length: int) -> bytes:
        """Squeeze ``length`` challenge bytes under ``label``."""

    def append_u64(self, label: bytes, value: int) -> None:
        if not 0 <= value < 2**64:
            raise ValueError("append_u64 takes an unsigned 64-bit integer")
        self.append_message(label, value.to_bytes(8, "little"))

    def append_point(self, label: bytes, point: bytes) -> None:
        self.append_message(label, point)

    def validate_and_append_point(self, label: bytes, point: bytes) -> None:
        """Append a proof point, refusing the identity as dalek does."""
        if point == IDENTITY:
            raise TranscriptError(f"{label.decode(errors='replace')} is the identity")
        self.append_message(label, point)

    def append_scalar(self, label: bytes, scalar: int) -> None:
        self.append_message(label, scalar_to_bytes(scalar))

    def challenge_scalar(self, label: bytes) -> int:
        """A challenge scalar from 64 bytes reduced mod ℓ (``from_bytes_mod_order_wide``)."""
        return scalar_from_wide(self.challenge_bytes(label, 64))


class MerlinTranscript(_TranscriptOps):
    """Merlin, byte for byte: ``MerlinTranscript(label)`` is Rust's ``Transcript::new(label)``."""

    __slots__ = ("_merlin",)

    def __init__(self, label: bytes) -> None:
        self._merlin = Merlin(label)

    def append_message(self, label: bytes, message: bytes) -> None:
        self._merlin.append_message(label, message)

    def challenge_bytes(self, label: bytes, length: int) -> bytes:
        return self._merlin.challenge_bytes(label, length)


def _record(op: int, label: bytes, data: bytes) -> bytes:
    return b"".join(
        (
            bytes((op,)),
            len(label).to_bytes(4, "little"),
            label,
            len(data).to_bytes(8, "little"),
            data,
        )
    )


def _head(op: int, label: bytes) -> bytes:
    """``op || LE32(len(label)) || label``: the start of a record (cached per label)."""
    if type(label) is not bytes:
        label = bytes(label)
    return _cached_head(op, label)


@functools.lru_cache(maxsize=256)
def _cached_head(op: int, label: bytes) -> bytes:
    if len(label) >= 2**32:
        raise ValueError("label too long")
    return bytes((op,)) + len(label).to_bytes(4, "little") + label


_LEN_32 = (32).to_bytes(8, "little")
_LEN_8 = (8).to_bytes(8, "little")
_LEN_64 = (64).to_bytes(8, "little")


class DefaultTranscript(_TranscriptOps):
    """The fast hashlib transcript (SHAKE256 over framed records, see the module doc).

    The helpers are overridden only to build the same records with fewer calls
    (cached record heads, no per-call re-framing); the bytes are the same.
    """

    __slots__ = ("_shake",)

    def __init__(self, label: bytes) -> None:
        self._shake = hashlib.shake_256(_record(_OP_INIT, DEFAULT_TRANSCRIPT_TAG, b""))
        self._shake.update(_record(_OP_APPEND, b"dom-sep", label))

    def append_message(self, label: bytes, message: bytes) -> None:
        self._shake.update(_head(_OP_APPEND, label) + len(message).to_bytes(8, "little") + message)

    def append_point(self, label: bytes, point: bytes) -> None:
        if len(point) != 32:
            self.append_message(label, point)
            return
        self._shake.update(_head(_OP_APPEND, label) + _LEN_32 + point)

    def validate_and_append_point(self, label: bytes, point: bytes) -> None:
        """Append a proof point, refusing the identity as dalek does."""
        if point == IDENTITY:
            raise TranscriptError(f"{label.decode(errors='replace')} is the identity")
        if len(point) != 32:
            self.append_message(label, point)
            return
        self._shake.update(_head(_OP_APPEND, label) + _LEN_32 + point)

    def append_scalar(self, label: bytes, scalar: int) -> None:
        self._shake.update(_head(_OP_APPEND, label) + _LEN_32 + scalar_to_bytes(scalar))

    def challenge_bytes(self, label: bytes, length: int) -> bytes:
        if not 0 <= length < 2**64:
            raise ValueError("challenge length or label out of range")
        self._shake.update(_head(_OP_CHALLENGE, label) + _LEN_8 + length.to_bytes(8, "little"))
        return self._shake.copy().digest(length)

    def challenge_scalar(self, label: bytes) -> int:
        """A challenge scalar from 64 bytes reduced mod ℓ (``from_bytes_mod_order_wide``)."""
        self._shake.update(_head(_OP_CHALLENGE, label) + _LEN_8 + _LEN_64)
        return int.from_bytes(self._shake.copy().digest(64), "little") % ORDER


def make_transcript(kind: str, label: bytes) -> Transcript:
    """A fresh transcript of ``kind`` ("merlin" or "default") started with ``label``."""
    if kind == "merlin":
        return MerlinTranscript(label)
    if kind == "default":
        return DefaultTranscript(label)
    raise ValueError(f"unknown transcript kind {kind!r}; expected one of {TRANSCRIPT_KINDS}")
