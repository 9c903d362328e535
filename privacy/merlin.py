"""STROBE-128 (the subset Merlin uses) and the Merlin transcript, byte-compatible with Rust merlin.

STROBE-128/1600 with rate ``R = 166``: the state is a Keccak-f[1600] sponge
initialised with ``[1, R+2, 1, 0, 1, 96] || "STROBEv1.0.2"`` and permuted once;
operations are framed by ``begin_op`` (absorbing ``pos_begin`` and the flags),
and ``run_f`` pads with ``pos_begin``, ``0x04`` and ``0x80`` at byte ``R+1``.
Merlin starts STROBE with protocol label ``"Merlin v1.0"``, appends
``dom-sep = label``, frames every message as ``meta_ad(label) ||
meta_ad(LE32(len), more) || ad(message)`` and every challenge as
``meta_ad(label) || meta_ad(LE32(len), more) || prf(len)``.
"""

from __future__ import annotations

from privacy.keccak import keccak_f1600

STROBE_R = 166
_FLAG_I = 1
_FLAG_A = 1 << 1
_FLAG_C = 1 << 2
_FLAG_T = 1 << 3
_FLAG_M = 1 << 4
_FLAG_K = 1 << 5


def _initial_state() -> bytes:
    state = bytearray(200)
    state[0:6] = bytes([1, STROBE_R + 2, 1, 0, 1, 96])
    state[6:18] = b"STROBEv1.0.2"
    keccak_f1600(state)
    return bytes(state)


_INITIAL_STATE = _initial_state()


class Strobe128:
    """The STROBE-128 operations Merlin needs: meta_ad, ad, prf, key."""

    __slots__ = ("_cur_flags", "_pos", "_pos_begin", "_state")

    def __init__(self, protocol_label: bytes) -> None:
        self._state = bytearray(_INITIAL_STATE)
        self._pos = 0
        self._pos_begin = 0
        self._cur_flags = 0
        self.meta_ad(protocol_label, more=False)

    def clone(self) -> Strobe128:
        other = Strobe128.__new__(Strobe128)
        other._state = bytearray(self._state)
        other._pos = self._pos
        other._pos_begin = self._pos_begin
        other._cur_flags = self._cur_flags
        return other

    def meta_ad(self, data: bytes, *, more: bool) -> None:
        self._begin_op(_FLAG_M | _FLAG_A, more)
        self._absorb(data)

    def ad(self, data: bytes, *, more: bool) -> None:
        self._begin_op(_FLAG_A, more)
        self._absorb(data)

    def prf(self, length: int, *, more: bool) -> bytes:
        self._begin_op(_FLAG_I | _FLAG_A | _FLAG_C, more)
        return self._squeeze(length)

    def key(self, data: bytes, *, more: bool) -> None:
        self._begin_op(_FLAG_A | _FLAG_C, more)
        self._overwrite(data)

    def _run_f(self) -> None:
        state = self._state
        state[self._pos] ^= self._pos_begin
        state[self._pos + 1] ^= 0x04
        state[STROBE_R + 1] ^= 0x80
        keccak_f1600(state)
        self._pos = 0
        self._pos_begin = 0

    def _absorb(self, data: bytes) -> None:
        state = self._state
        offset = 0
        total = len(data)
        while offset < total:
            take = min(STROBE_R - self._pos, total - offset)
            start = self._pos
            mixed = int.from_bytes(state[start : start + take], "little") ^ int.from_bytes(
                data[offset : offset + take], "little"
            )
            state[start : start + take] = mixed.to_bytes(take, "little")
            self._pos += take
            offset += take
            if self._pos == STROBE_R:
                self._run_f()

    def _overwrite(self, data: bytes) -> None:
        offset = 0
        total = len(data)
        while offset < total:
            take = min(STROBE_R - self._pos, total - offset)
            self._state[self._pos : self._pos + take] = data[offset : offset + take]
            self._pos += take
            offset += take
            if self._pos == STROBE_R:
                self._run_f()

    def _squeeze(self, length: int) -> bytes:
        out = bytearray()
        while len(out) < length:
            take = min(STROBE_R - self._pos, length - len(out))
            start = self._pos
            out += self._state[start : start + take]
            self._state[start : start + take] = bytes(take)
            self._pos += take
            if self._pos == STROBE_R:
                self._run_f()
        return bytes(out)

    def _begin_op(self, flags: int, more: bool) -> None:
        if more:
            if self._cur_flags != flags:
                raise ValueError("STROBE: continued operation with different flags")
            return
        if flags & _FLAG_T:
            raise ValueError("STROBE: transport operations are not supported")
        old_begin = self._pos_begin
        self._pos_begin = self._pos + 1
        self._cur_flags = flags
        self._absorb(bytes([old_begin, flags]))
        if flags & (_FLAG_C | _FLAG_K) and self._pos != 0:
            self._run_f()


MERLIN_PROTOCOL_LABEL = b"Merlin v1.0"


class Merlin:
    """A Merlin transcript: the raw append/challenge operations."""

    __slots__ = ("_strobe",)

    def __init__(self, label: bytes) -> None:
        self._strobe = Strobe128(MERLIN_PROTOCOL_LABEL)
        self.append_message(b"dom-sep", label)

    def append_message(self, label: bytes, message: bytes) -> None:
        self._strobe.meta_ad(label, more=False)
        self._strobe.meta_ad(len(message).to_bytes(4, "little"), more=True)
        self._strobe.ad(message, more=False)

    def challenge_bytes(self, label: bytes, length: int) -> bytes:
        if not 0 <= length < 2**32:
            raise ValueError("challenge length must fit in 32 bits")
        self._strobe.meta_ad(label, more=False)
        self._strobe.meta_ad(length.to_bytes(4, "little"), more=True)
        return self._strobe.prf(length, more=False)

    def clone(self) -> Merlin:
        other = Merlin.__new__(Merlin)
        other._strobe = self._strobe.clone()
        return other
