"""Signing identities: ed25519 keys (PyNaCl) with domain-separated signatures.

Every signature covers ``encode_value((domain_tag, chain_id, payload))``. The
domain tag names the message kind and its version (``b"veil/tx/transfer/v1"``)
and the chain id is the genesis hash, so a signature made for one kind of
message, one version or one chain never verifies for another. The canonical
array encoding length-prefixes each part, so no two (tag, chain, payload)
triples share signed bytes.

Key files are JSON with hex fields, created with mode 0600 and never
overwritten. Secrets never appear in ``repr``, logs or error messages.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from nacl.bindings import (
    crypto_core_ed25519_add,
    crypto_core_ed25519_is_valid_point,
    crypto_scalarmult_ed25519_base_noclamp,
)
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ledger import signature_rule
from ledger.codec import bin_header, encode_value

CHAIN_ID_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
KEY_FILE_KIND = "veil-ed25519-signing-key"
KEY_FILE_VERSION = 1

_DOMAIN_TAG = re.compile(rb"^veil/[a-z0-9_\-]+(/[a-z0-9_\-]+)*/v[0-9]+$")


class KeyFileError(Exception):
    """A key file is missing, malformed, too permissive, or would be overwritten."""


def check_domain_tag(domain_tag: bytes) -> None:
    """Raise ``ValueError`` unless the tag looks like ``b"veil/<kind>/v<N>"``."""
    if not isinstance(domain_tag, bytes) or not _DOMAIN_TAG.fullmatch(domain_tag):
        raise ValueError(f"domain tag {domain_tag!r} must look like b'veil/<kind>/v<N>'")


def signing_bytes(domain_tag: bytes, chain_id: bytes, payload: bytes) -> bytes:
    """The exact bytes an ed25519 signature covers: ``encode_value((domain_tag,
    chain_id, payload))``.

    A validator builds these twice per tx (its id, its signature), so the
    checked head of the array is kept per (tag, chain id) and only the payload's
    ``bin`` header is made per call: 0.6 µs instead of 2.8 µs (docs/performance.md).
    """
    if type(domain_tag) is bytes and type(chain_id) is bytes and type(payload) is bytes:
        head = _SIGNED_HEADS.get((domain_tag, chain_id))
        if head is not None:
            return head + bin_header(len(payload)) + payload
    check_domain_tag(domain_tag)
    if len(chain_id) != CHAIN_ID_BYTES:
        raise ValueError(f"chain id must be {CHAIN_ID_BYTES} bytes, got {len(chain_id)}")
    signed = encode_value((domain_tag, chain_id, payload))
    if type(chain_id) is bytes and len(_SIGNED_HEADS) < _MAX_SIGNED_HEADS:
        empty = encode_value((domain_tag, chain_id, b""))
        _SIGNED_HEADS[(domain_tag, chain_id)] = empty[: -len(bin_header(0))]
    return signed


_SIGNED_HEADS: dict[tuple[bytes, bytes], bytes] = {}
"""(domain tag, chain id) -> the canonical array's bytes before the payload's; only
checked pairs enter. Tags are constants and a node has one chain id; the bound
keeps a process that meets many chains (tests, tools) from growing it."""
_MAX_SIGNED_HEADS = 1024


def _subgroup_check_is_sound() -> bool:
    """libsodium before its December 2025 fix (CVE-2025-69277; PyNaCl 1.6.2 bundles
    it) took ``B + T2``, a point with torsion, as of prime order. Nodes on builds
    before and after would disagree on ``ed25519_key_problem``, a consensus rule."""
    base = crypto_scalarmult_ed25519_base_noclamp((1).to_bytes(32, "little"))
    order_two = (2**255 - 20).to_bytes(32, "little")  # (0, -1)
    return not crypto_core_ed25519_is_valid_point(crypto_core_ed25519_add(base, order_two))


if not _subgroup_check_is_sound():
    raise RuntimeError(
        "this libsodium takes points with torsion for keys (CVE-2025-69277): "
        "validators would split on registrations; install PyNaCl 1.6.2 or later"
    )


def ed25519_key_problem(public_key: bytes) -> str | None:
    """Why ``public_key`` cannot be anyone's ed25519 key, or ``None`` if it can.

    A key made by ``SigningKey`` is ``a·B``: a canonical encoding of a point in
    the prime-order subgroup. libsodium's check refuses everything else (the
    all-zero bytes, other small-order points, non-canonical encodings, points
    off the curve); nobody can sign for such a key.
    """
    if len(public_key) != PUBLIC_KEY_BYTES:
        return f"an ed25519 public key is {PUBLIC_KEY_BYTES} bytes, not {len(public_key)}"
    if not crypto_core_ed25519_is_valid_point(public_key):
        return "not a canonical ed25519 point of prime order (nobody can sign for it)"
    return None


def verify_signature(
    public_key: bytes, domain_tag: bytes, chain_id: bytes, payload: bytes, signature: bytes
) -> bool:
    """True only for a valid signature by ``public_key`` over this exact context,
    under the ledger's rule (``ledger.signature_rule``)."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        message = signing_bytes(domain_tag, chain_id, payload)
    except (ValueError, TypeError):
        return False
    # The ledger's rule (cofactored, so batches are sound): ledger/signature_rule.py.
    return signature_rule.verify(public_key, message, signature)


def verify_self_tagged(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """A signature on bytes that carry their own domain tag and chain id
    (``SigningIdentity.sign_self_tagged``): consensus's ``Verify``. Never raises.
    libsodium's exact check: consensus checks its messages one at a time, so the
    ledger's batch rule (``verify_signature``) would buy it nothing."""
    if (
        type(public_key) is not bytes
        or type(message) is not bytes
        or type(signature) is not bytes
        or len(public_key) != PUBLIC_KEY_BYTES
        or len(signature) != SIGNATURE_BYTES
    ):
        return False
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True, slots=True, repr=False)
class SigningIdentity:
    """An ed25519 key pair. ``repr`` shows the public key only."""

    _signing_key: SigningKey

    @classmethod
    def generate(cls) -> SigningIdentity:
        return cls(SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningIdentity:
        if len(seed) != 32:
            raise ValueError("an ed25519 seed is 32 bytes")
        return cls(SigningKey(seed))

    @property
    def public_key(self) -> bytes:
        return bytes(self._signing_key.verify_key)

    def sign(self, domain_tag: bytes, chain_id: bytes, payload: bytes) -> bytes:
        message = signing_bytes(domain_tag, chain_id, payload)
        return bytes(self._signing_key.sign(message).signature)

    def sign_self_tagged(self, message: bytes) -> bytes:
        """Sign bytes that carry their own versioned domain tag and chain id already:
        consensus messages (``consensus.messages.signed_bytes``), whose signatures
        clients check with plain ed25519. Everything else goes through ``sign``."""
        return bytes(self._signing_key.sign(message).signature)

    def __repr__(self) -> str:
        return f"SigningIdentity(public_key={self.public_key.hex()})"

    __str__ = __repr__

    # --- key files ------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write a new key file with mode 0600; refuse to overwrite an existing one."""
        document = {
            "kind": KEY_FILE_KIND,
            "version": KEY_FILE_VERSION,
            "public_key": self.public_key.hex(),
            "seed": bytes(self._signing_key).hex(),
        }
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())

    @classmethod
    def load(cls, path: Path) -> SigningIdentity:
        """Read a key file; refuse one readable by group or others, as ssh does."""
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise KeyFileError(f"{path}: no such key file") from None
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot read the key file: {_os_reason(exc)}") from None
        # A directory or a FIFO is an operator's slip; reading a FIFO would hang start-up.
        if not stat.S_ISREG(mode):
            raise KeyFileError(f"{path}: not a regular file")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"{path}: permissions {oct(mode & 0o777)} are too open; use 0600")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot read the key file: {_os_reason(exc)}") from None
        try:
            # Bad UTF-8 is a ValueError below: "malformed", never the bytes themselves.
            document = json.loads(raw.decode("utf-8"))
            if document.get("kind") != KEY_FILE_KIND or document.get("version") != KEY_FILE_VERSION:
                raise KeyFileError(f"{path}: not a version {KEY_FILE_VERSION} veil key file")
            seed = bytes.fromhex(document["seed"])
            public_key = bytes.fromhex(document["public_key"])
        except KeyFileError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            # Deliberately vague: the parse error could quote secret material.
            raise KeyFileError(f"{path}: malformed key file") from None
        if len(seed) != 32:
            raise KeyFileError(f"{path}: malformed key file")
        identity = cls.from_seed(seed)
        if identity.public_key != public_key:
            raise KeyFileError(f"{path}: public key does not match the secret seed")
        return identity


def _os_reason(exc: OSError) -> str:
    """The OS's reason alone (``strerror``): never the file's content."""
    return exc.strerror or type(exc).__name__
