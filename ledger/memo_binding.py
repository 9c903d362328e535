"""Binding the owner memo for the auditor: the audit memo discloses the owner memo's
ephemeral X25519 key, so the auditor can check the owner memo it cannot otherwise open.

Why: validators cannot read memos, and the auditor reads only the audit memo.
A sender could pair an honest audit memo with an owner memo sealed to the
wrong key (or carrying another opening): the auditor would credit the
recipient with an output the recipient can never open, so never spend
(issue 8, §2.3). An ordinary sealed box hides even that from the auditor.

The construction. An owner memo is a libsodium sealed box
``epk || box(plaintext, nonce = BLAKE2b-192(epk || pk), key = X25519(esk, pk))``;
the owner opens it with ``X25519(sk, epk)``, the same key. Builders here seal
it themselves with a fresh ``esk`` (byte-compatible: the owner's wallet opens
it with ``SealedBox``) and put ``esk`` in the **audit** memo's note
(``OWNER_KEY_NOTE``). The auditor then checks, against the owner's memo key as
registered in the state:

1. ``X25519_base(esk)`` is the owner memo's ``epk``;
2. the box opens with ``(esk, registered key)``: the owner's wallet, which
   derives the same key and nonce from its own key pair, opens it too;
3. its plaintext is an opening with the audit memo's value, blinding and asset
   (the note is the owner's own and is not compared).

If all three hold, the owner can open the output; if any fails, the sender lied
(``OWNER_MEMO_MISMATCH``); an audit memo without the disclosure cannot be
checked (``OWNER_MEMO_UNBOUND``) and is reported as such. What the auditor
learns beyond the audit memo is the owner memo's note.
"""

from __future__ import annotations

import hashlib
from typing import Final

from nacl.bindings import crypto_box, crypto_box_open, crypto_scalarmult_base
from nacl.exceptions import CryptoError
from nacl.utils import random as random_bytes

from privacy.memo import MemoError, Opening

EPHEMERAL_KEY_BYTES: Final = 32
OWNER_KEY_NOTE_VERSION: Final = 1
OWNER_KEY_NOTE_BYTES: Final = 1 + EPHEMERAL_KEY_BYTES
"""The audit memo's note: version byte, then the owner memo's ephemeral secret key."""
_NONCE_BYTES: Final = 24


def _seal_nonce(ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    """libsodium's ``crypto_box_seal`` nonce: unkeyed BLAKE2b-192 of ``epk || pk``."""
    return hashlib.blake2b(ephemeral_public + recipient_public, digest_size=_NONCE_BYTES).digest()


def seal_with_ephemeral(
    plaintext: bytes, recipient_public: bytes, ephemeral_secret: bytes
) -> bytes:
    """A sealed box to ``recipient_public`` made with a chosen ephemeral secret."""
    ephemeral_public = crypto_scalarmult_base(ephemeral_secret)
    nonce = _seal_nonce(ephemeral_public, recipient_public)
    try:
        boxed: bytes = crypto_box(plaintext, nonce, recipient_public, ephemeral_secret)
    except CryptoError:
        raise ValueError("the recipient public key is not a usable X25519 key") from None
    return ephemeral_public + boxed


def open_with_ephemeral(
    memo: bytes, recipient_public: bytes, ephemeral_secret: bytes
) -> bytes | None:
    """The plaintext of a sealed box to ``recipient_public`` made with ``ephemeral_secret``,
    or ``None`` if the box was not made with that key for that recipient."""
    ephemeral_public = memo[:EPHEMERAL_KEY_BYTES]
    if crypto_scalarmult_base(ephemeral_secret) != ephemeral_public:
        return None
    nonce = _seal_nonce(ephemeral_public, recipient_public)
    try:
        plaintext: bytes = crypto_box_open(
            memo[EPHEMERAL_KEY_BYTES:], nonce, recipient_public, ephemeral_secret
        )
    except (CryptoError, ValueError):
        return None
    return plaintext


def seal_owner_memo(opening: Opening, owner_memo_key: bytes) -> tuple[bytes, bytes]:
    """``(owner memo, its ephemeral secret)``: put the secret in the audit memo."""
    ephemeral_secret = random_bytes(EPHEMERAL_KEY_BYTES)
    return seal_with_ephemeral(opening.encode(), owner_memo_key, ephemeral_secret), ephemeral_secret


def audit_opening(opening: Opening, owner_ephemeral_secret: bytes) -> Opening:
    """What the audit memo carries: the owner's opening with the disclosure as its note."""
    if len(owner_ephemeral_secret) != EPHEMERAL_KEY_BYTES:
        raise ValueError(f"an ephemeral secret is {EPHEMERAL_KEY_BYTES} bytes")
    note = bytes([OWNER_KEY_NOTE_VERSION]) + owner_ephemeral_secret
    return Opening(opening.value, opening.blinding, opening.asset, note)


def disclosed_ephemeral_secret(audit: Opening) -> bytes | None:
    """The owner memo's ephemeral secret an audit opening discloses, if it does."""
    note = audit.note
    if len(note) != OWNER_KEY_NOTE_BYTES or note[0] != OWNER_KEY_NOTE_VERSION:
        return None
    return note[1:]


def owner_memo_problem(
    owner_memo: bytes, owner_memo_key: bytes, audit: Opening
) -> tuple[str, Opening | None]:
    """Check an owner memo against its audit opening: ``("", owner's opening)`` when the
    owner can open it to the same value, blinding and asset, else
    ``(reason, None)`` with reason OWNER_MEMO_UNBOUND or OWNER_MEMO_MISMATCH."""
    secret = disclosed_ephemeral_secret(audit)
    if secret is None:
        return "OWNER_MEMO_UNBOUND", None
    plaintext = open_with_ephemeral(owner_memo, owner_memo_key, secret)
    if plaintext is None:
        return "OWNER_MEMO_MISMATCH", None
    try:
        owned = Opening.decode(plaintext)
    except MemoError:
        return "OWNER_MEMO_MISMATCH", None
    if (owned.value, owned.blinding, owned.asset) != (audit.value, audit.blinding, audit.asset):
        return "OWNER_MEMO_MISMATCH", None
    return "", owned
