"""Encrypted openings ("memos"): ``(v, r, asset, note)`` sealed to an X25519 key.

An output's commitment ``C = v·G + r·H`` hides its amount from everyone; the
owner and the auditor learn the opening from memos, one per recipient, each a
PyNaCl ``SealedBox`` (ephemeral X25519 + XSalsa20-Poly1305, anonymous sender).

Plaintext (version 1), canonical and compact, 75 + len(note) bytes::

    0x01 || value u64 LE (8) || blinding scalar LE (32, < ℓ) || asset (32)
         || note length u16 LE (2, ≤ 256) || note

A memo is 48 bytes longer (ephemeral public key 32 + MAC 16): 123 bytes with an
empty note, 379 with the largest one. Decoding is strict: the version, exact
length, canonical blinding and note bound are checked, so each opening has one
encoding.

Nothing in the ciphertext binds it to an output; instead ``open_memo`` checks
the opening against the output's commitment (``commit(v, r) == C``) before it
returns it. A memo copied from another output, or one whose sender lied about
the amount, is therefore reported as ``OPENING_MISMATCH`` and never trusted.

Errors are ``MemoError`` with a stable ``reason``:

- ``UNDECRYPTABLE``: the box does not open with this key (not for us, or tampered).
- ``MALFORMED``: the memo cannot be a memo (bad size), or it decrypts to bytes
  that are not a canonical opening.
- ``OPENING_MISMATCH``: it decrypts to a well-formed opening that does not open
  the commitment.

Wallet scanning uses ``try_open_memo``: it returns ``None`` only when the memo
cannot be decrypted with our key (``UNDECRYPTABLE``, or a size no sealed memo
can have), which is the normal "not for me" case. Anything that *does* decrypt
but is wrong (``MALFORMED`` plaintext, ``OPENING_MISMATCH``) is raised: someone
sealed a memo to us that misstates what we own, and that must be reported, not
silently skipped. ``MemoError.decrypted`` tells the two groups apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from privacy import group
from privacy.pedersen import commit

MEMO_VERSION = 1
ASSET_BYTES = 32
MAX_NOTE_BYTES = 256
MAX_VALUE = 2**64 - 1
KEY_BYTES = 32

_HEADER_BYTES = 1 + 8 + 32 + ASSET_BYTES + 2
SEAL_OVERHEAD = 48
"""SealedBox overhead: the ephemeral X25519 public key (32) and the Poly1305 tag (16)."""
MIN_MEMO_BYTES = SEAL_OVERHEAD + _HEADER_BYTES
"""123: a memo with an empty note."""
MAX_MEMO_BYTES = MIN_MEMO_BYTES + MAX_NOTE_BYTES
"""379: a memo with a 256-byte note."""


class MemoError(ValueError):
    """A memo that cannot be trusted. ``reason``: UNDECRYPTABLE, MALFORMED, OPENING_MISMATCH.

    ``decrypted`` is True when the memo did decrypt with the given key, i.e. it
    was sealed to us and is wrong, rather than simply not ours.
    """

    def __init__(self, reason: str, message: str, *, decrypted: bool) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.decrypted = decrypted


@dataclass(frozen=True, slots=True)
class Opening:
    """The opening of ``C = value·G + blinding·H`` plus its asset id and a free-form note.

    ``value``, ``blinding`` and ``note`` are left out of the repr (and out of error
    messages), so logging an opening or a traceback does not reveal the amount
    or the blinding that the commitment hides, nor the confidential note.
    """

    value: int = field(repr=False)
    blinding: int = field(repr=False)
    asset: bytes
    note: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.value, int) or isinstance(self.value, bool):
            raise TypeError("value must be an int")
        if not 0 <= self.value <= MAX_VALUE:
            raise ValueError("value must be in [0, 2^64)")
        if not isinstance(self.blinding, int) or isinstance(self.blinding, bool):
            raise TypeError("blinding must be an int")
        if not 0 <= self.blinding < group.ORDER:
            raise ValueError("blinding must be a reduced scalar in [0, ℓ)")
        if not isinstance(self.asset, bytes) or len(self.asset) != ASSET_BYTES:
            raise ValueError(f"asset must be {ASSET_BYTES} bytes")
        if not isinstance(self.note, bytes) or len(self.note) > MAX_NOTE_BYTES:
            raise ValueError(f"note must be bytes of at most {MAX_NOTE_BYTES} bytes")

    def commitment(self) -> bytes:
        """``value·G + blinding·H``."""
        return commit(self.value, self.blinding)

    def encode(self) -> bytes:
        """The canonical plaintext (see the module docstring)."""
        return b"".join(
            (
                bytes([MEMO_VERSION]),
                self.value.to_bytes(8, "little"),
                self.blinding.to_bytes(32, "little"),
                self.asset,
                len(self.note).to_bytes(2, "little"),
                self.note,
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> Opening:
        """Parse a canonical plaintext; raises ``MemoError("MALFORMED")`` on anything else."""
        if len(data) < _HEADER_BYTES:
            raise MemoError("MALFORMED", "plaintext too short", decrypted=True)
        if data[0] != MEMO_VERSION:
            raise MemoError("MALFORMED", f"unknown memo version {data[0]}", decrypted=True)
        value = int.from_bytes(data[1:9], "little")
        blinding = int.from_bytes(data[9:41], "little")
        asset = data[41:73]
        note_length = int.from_bytes(data[73:75], "little")
        if note_length > MAX_NOTE_BYTES:
            raise MemoError("MALFORMED", f"note of {note_length} bytes", decrypted=True)
        if len(data) != _HEADER_BYTES + note_length:
            raise MemoError("MALFORMED", "plaintext length does not match", decrypted=True)
        if blinding >= group.ORDER:
            raise MemoError("MALFORMED", "non-canonical blinding", decrypted=True)
        return cls(value, blinding, asset, data[_HEADER_BYTES:])


def generate_memo_keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 keypair ``(private, public)``, 32 bytes each."""
    private = PrivateKey.generate()
    return bytes(private), bytes(private.public_key)


def memo_public_key(private_key: bytes) -> bytes:
    """The X25519 public key of a memo private key."""
    _check_key(private_key, "private")
    return bytes(PrivateKey(private_key).public_key)


def _check_key(key: bytes, kind: str) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError(f"a memo {kind} key is {KEY_BYTES} bytes")


def seal_memo(opening: Opening, recipient_public_key: bytes) -> bytes:
    """Encrypt ``opening`` to ``recipient_public_key`` (X25519); anyone can seal, only it opens."""
    if not isinstance(opening, Opening):
        raise TypeError("seal_memo takes an Opening")
    _check_key(recipient_public_key, "public")
    try:
        sealed: bytes = SealedBox(PublicKey(recipient_public_key)).encrypt(opening.encode())
    except CryptoError:
        # libsodium refuses a low-order X25519 point: the shared secret would be public.
        raise ValueError("the recipient public key is not a usable X25519 key") from None
    return sealed


def open_memo(memo: bytes, recipient_private_key: bytes, commitment: bytes) -> Opening:
    """Decrypt ``memo`` and return its opening, only if it opens ``commitment``.

    Raises ``MemoError`` with reason UNDECRYPTABLE, MALFORMED or OPENING_MISMATCH.
    """
    _check_key(recipient_private_key, "private")
    if not isinstance(memo, bytes) or not MIN_MEMO_BYTES <= len(memo) <= MAX_MEMO_BYTES:
        size = len(memo) if isinstance(memo, bytes) else "non-bytes"
        raise MemoError(
            "MALFORMED",
            f"a memo is {MIN_MEMO_BYTES}..{MAX_MEMO_BYTES} bytes, got {size}",
            decrypted=False,
        )
    try:
        plaintext = SealedBox(PrivateKey(recipient_private_key)).decrypt(memo)
    except CryptoError:
        raise MemoError(
            "UNDECRYPTABLE", "the memo does not open with this key", decrypted=False
        ) from None
    opening = Opening.decode(plaintext)
    if opening.commitment() != commitment:
        raise MemoError(
            "OPENING_MISMATCH",
            "the memo decrypts but its opening does not match the commitment",
            decrypted=True,
        )
    return opening


def try_open_memo(memo: bytes, recipient_private_key: bytes, commitment: bytes) -> Opening | None:
    """Wallet scanning: ``None`` if the memo is not ours, the opening if it is and is right.

    Raises ``MemoError`` (MALFORMED or OPENING_MISMATCH, ``decrypted=True``) when
    the memo decrypts with our key but is wrong: that must be reported.
    """
    try:
        return open_memo(memo, recipient_private_key, commitment)
    except MemoError as err:
        if err.decrypted:
            raise
        return None
