"""The files the loan commands exchange: offer, accepted offer, exposure proof, credit
report, and the lender's pending offers (its secrets) in its wallet directory.

Every file is JSON with a ``kind`` and a ``version``; the signed or proven part is
the canonical encoding of the ledger record, in hex, so what a verifier checks
is byte for byte what the prover made. The readable fields next to it (amount,
terms, limit...) are for people; the verifier never trusts them. A file that is
not what it should be is a ``LoanFileError`` with one line saying why.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Final, TypeVar

from client.wallet_file import write_private_file
from ledger.codec import DecodeError, Record
from ledger.loan_build import NO_CONSENT, LoanOffer
from ledger.tx import LoanOriginateBody
from privacy.memo import Opening

FILE_VERSION: Final = 1
OFFER_KIND: Final = "veil-loan-offer"
ACCEPTED_KIND: Final = "veil-loan-accepted"
EXPOSURE_KIND: Final = "veil-exposure-proof"
REPORT_KIND: Final = "veil-credit-report"
PENDING_KIND: Final = "veil-loan-pending-offer"
OFFERS_DIR_NAME: Final = "offers"
MAX_FILE_BYTES: Final = 4 << 20

R = TypeVar("R", bound=Record)


class LoanFileError(Exception):
    """A loan file that cannot be used, with one line saying why."""


def write_document(path: Path, kind: str, fields: dict[str, object]) -> None:
    """Write a loan file (0600: an offer names amounts) atomically; never half a file."""
    document = {"kind": kind, "version": FILE_VERSION, **fields}
    try:
        write_private_file(path, json.dumps(document, indent=2) + "\n", overwrite=True)
    except OSError as exc:
        raise LoanFileError(f"{path}: cannot write ({exc.strerror})") from None


def read_document(path: Path, kind: str) -> dict[str, object]:
    try:
        data = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        raise LoanFileError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise LoanFileError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LoanFileError(f"{path}: not JSON") from None
    if not isinstance(document, dict) or document.get("kind") != kind:
        raise LoanFileError(f"{path}: not a {kind} file")
    if document.get("version") != FILE_VERSION:
        raise LoanFileError(f"{path}: unsupported version {document.get('version')!r}")
    return document


def record_field(path: Path, document: dict[str, object], name: str, cls: type[R]) -> R:
    """The canonical record ``cls`` stored as hex under ``name``."""
    text = document.get(name)
    try:
        return cls.decode(bytes.fromhex(str(text)))
    except (ValueError, DecodeError) as exc:
        raise LoanFileError(f"{path}: field {name!r} is not a {cls.__name__} ({exc})") from None


def offer_id(body: LoanOriginateBody) -> str:
    """Names an offer whatever the consent: SHA-256 of the body with no consent."""
    return hashlib.sha256(replace(body, borrower_consent=NO_CONSENT).encode()).hexdigest()


def _opening_json(opening: Opening) -> dict[str, object]:
    return {
        "value": opening.value,
        "blinding": f"{opening.blinding:064x}",
        "asset": opening.asset.hex(),
        "note": opening.note.hex(),
    }


def _opening_from_json(obj: object) -> Opening:
    if not isinstance(obj, dict):
        raise ValueError("an opening is not an object")
    return Opening(
        int(obj["value"]),
        int(str(obj["blinding"]), 16),
        bytes.fromhex(str(obj["asset"])),
        bytes.fromhex(str(obj["note"])),
    )


def save_pending_offer(wallet_dir: Path, offer: LoanOffer) -> Path:
    """Keep the lender's secrets of ``offer`` (excess blinding, output openings) in
    ``WALLET/offers/<offer id>.json`` until the borrower's consent comes back."""
    folder = wallet_dir / OFFERS_DIR_NAME
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{offer_id(offer.body)}.json"
    write_document(
        path,
        PENDING_KIND,
        {
            "body": offer.body.encode().hex(),
            "excess_blinding": f"{offer.excess_blinding:064x}",
            "openings": [_opening_json(o) for o in offer.openings],
        },
    )
    return path


def load_pending_offer(wallet_dir: Path, body: LoanOriginateBody) -> LoanOffer:
    """The pending offer ``body`` (consented or not) was made from, or ``LoanFileError``."""
    path = wallet_dir / OFFERS_DIR_NAME / f"{offer_id(body)}.json"
    if not path.exists():
        raise LoanFileError(
            f"no pending offer {offer_id(body)[:16]}… in {wallet_dir}: "
            "this wallet did not make this offer"
        )
    document = read_document(path, PENDING_KIND)
    pending = record_field(path, document, "body", LoanOriginateBody)
    try:
        excess = int(str(document["excess_blinding"]), 16)
        openings = tuple(_opening_from_json(o) for o in document["openings"])  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError):
        raise LoanFileError(f"{path}: damaged pending offer") from None
    if offer_id(pending) != offer_id(body):
        raise LoanFileError(f"{path}: holds another offer")
    return LoanOffer(pending, excess, openings)


def forget_pending_offer(wallet_dir: Path, body: LoanOriginateBody) -> None:
    (wallet_dir / OFFERS_DIR_NAME / f"{offer_id(body)}.json").unlink(missing_ok=True)
