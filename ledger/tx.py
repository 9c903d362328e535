"""Transactions: one envelope, one body record per kind, selected by a versioned domain tag.

Layout::

    Tx = [kind, body, signature, witness]
      kind       the domain tag, e.g. b"veil/tx/transfer/v1"; selects the body record
      body       the canonical encoding of that record (everything the sender means)
      signature  ed25519 by the body's signer over sign(kind, chain_id, body)
      witness    kind-specific proof that is not part of the intent:
                 issue/transfer/loan_originate/loan_repay: the excess (balance) proof,
                 64 bytes; loan_close: the proof that the outstanding opens to 0;
                 register_member/remove_member/set_auditor_key: encoded ``Approvals``;
                 others: empty

The **tx id** is ``SHA-256(signing_bytes(kind, chain_id, body))``: the digest
of exactly what the sender signed, bound to the kind and the chain. It is the
message of the excess proof and of governance approvals, and output ids derive
from it, so none of the witness bytes can change what a tx *is*.

Extension point: add a body record and a tag to ``BODY_TYPES``, and the kind's
rules in ``ledger.rules`` (loans, issue 11, did: ``ledger.loans``); the envelope,
ids, block format and store do not change. An unknown tag is ``UNKNOWN_KIND``.
"""

from __future__ import annotations

import hashlib
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Final

from ledger.codec import U32, U64, Bytes32, Bytes64, DecodeError, FixedLen, MaxLen, Record
from ledger.identity import signing_bytes
from ledger.reasons import Reason, TxRejected

TAG_REGISTER_ACCOUNT: Final = b"veil/tx/register_account/v1"
TAG_ISSUE: Final = b"veil/tx/issue/v1"
TAG_TRANSFER: Final = b"veil/tx/transfer/v1"
TAG_ATTEST: Final = b"veil/tx/attest/v1"
TAG_REGISTER_MEMBER: Final = b"veil/tx/register_member/v1"
TAG_SET_AUDITOR_KEY: Final = b"veil/tx/set_auditor_key/v1"
TAG_REMOVE_MEMBER: Final = b"veil/tx/remove_member/v1"
TAG_LOAN_ORIGINATE: Final = b"veil/tx/loan_originate/v1"
TAG_LOAN_REPAY: Final = b"veil/tx/loan_repay/v1"
TAG_LOAN_ACCRUE: Final = b"veil/tx/loan_accrue/v1"
TAG_LOAN_CLOSE: Final = b"veil/tx/loan_close/v1"
TAG_LOAN_CONSENT: Final = b"veil/tx/loan_originate/consent/v1"
"""Domain of the borrower's consent signature over ``LoanConsent``."""
TAG_APPROVE: Final = b"veil/gov/approve/v1"
"""Domain of a member's approval signature over a governance tx id."""
TAG_REGISTER_ACCOUNT_POP: Final = b"veil/tx/register_account/pop/v1"
"""Domain of an account key's proof of possession (``pop_payload``)."""
TAG_REGISTER_MEMBER_POP: Final = b"veil/tx/register_member/pop/v1"
"""Domain of a new member key's proof of possession (``member_pop_payload``)."""
OUTPUT_ID_BYTES: Final = 33
"""An output id is the creating tx id (32 bytes) followed by the output index (1 byte)."""

MAX_INPUTS: Final = 64
MAX_OUTPUTS: Final = 16
"""Output counts are powers of two up to this (the aggregated range proof's m)."""
MAX_MEMO_BYTES: Final = 379
"""privacy.memo.MAX_MEMO_BYTES: a sealed opening with a 256-byte note."""
MAX_RANGE_PROOF_BYTES: Final = 2048
MAX_LABEL_CHARS: Final = 64
MAX_NAME_CHARS: Final = 64
MAX_APPROVALS: Final = 64
MAX_NEW_ASSETS: Final = 8
EXCESS_PROOF_BYTES: Final = 64
RANGE_BITS: Final = 64

Memo = Annotated[bytes, MaxLen(MAX_MEMO_BYTES)]
RangeProofBytes = Annotated[bytes, MaxLen(MAX_RANGE_PROOF_BYTES)]
Label = Annotated[str, MaxLen(MAX_LABEL_CHARS)]
Name = Annotated[str, MaxLen(MAX_NAME_CHARS)]


@dataclass(frozen=True, slots=True)
class TxOutput(Record):
    """A confidential output as created: owner, ``C = v·G + r·H`` and two sealed openings."""

    owner: Bytes32
    commitment: Bytes32
    owner_memo: Memo
    audit_memo: Memo


Outputs = Annotated[tuple[TxOutput, ...], MaxLen(MAX_OUTPUTS)]
OutputId = Annotated[bytes, FixedLen(OUTPUT_ID_BYTES)]


@dataclass(frozen=True, slots=True)
class RegisterAccountBody(Record):
    """A member bank registers a client account (ed25519 key + X25519 memo key).

    ``proof_of_possession`` is the account key's own ed25519 signature over
    ``pop_payload(registrar, account_key, memo_public_key)`` under
    ``TAG_REGISTER_ACCOUNT_POP`` and the chain id: the account consents to
    being registered by this member, with this memo key, on this chain. It is
    in the body (signed by the registrar, inside the tx id), so nobody can
    swap it without changing what the tx is.
    """

    registrar: Bytes32
    account_key: Bytes32
    memo_public_key: Bytes32
    nonce: U64
    proof_of_possession: Bytes64


@dataclass(frozen=True, slots=True)
class AccountPossession(Record):
    """What an account key signs to consent to its registration (see ``pop_payload``)."""

    registrar: Bytes32
    account_key: Bytes32
    memo_public_key: Bytes32


def pop_payload(registrar: bytes, account_key: bytes, memo_public_key: bytes) -> bytes:
    """The payload of an account's proof of possession, signed under
    ``TAG_REGISTER_ACCOUNT_POP`` (``ledger.identity`` adds the tag and the chain id).

    The nonce is left out on purpose: an account is registered at most once
    (``ALREADY_REGISTERED``) so the PoP cannot be replayed, and the account can
    sign before its bank picks a nonce (or rebuild the tx with another one).
    """
    return AccountPossession(registrar, account_key, memo_public_key).encode()


@dataclass(frozen=True, slots=True)
class IssueBody(Record):
    """The asset's issuer mints a PUBLIC ``amount`` into confidential outputs.

    Balance: ``amount·G − Σ outputs = x·H``, proven by the excess proof.
    """

    issuer: Bytes32
    asset: Bytes32
    amount: U64
    outputs: Outputs
    range_proof: RangeProofBytes
    nonce: U64


@dataclass(frozen=True, slots=True)
class TransferBody(Record):
    """Spend ``inputs`` (all owned by ``sender``, all of ``asset``) into ``outputs``.

    Balance: ``Σ inputs − Σ outputs = x·H``, proven by the excess proof.
    Replay protection: the inputs (an output is spent once).
    """

    sender: Bytes32
    asset: Bytes32
    inputs: Annotated[tuple[OutputId, ...], MaxLen(MAX_INPUTS)]
    outputs: Outputs
    range_proof: RangeProofBytes


@dataclass(frozen=True, slots=True)
class AttestBody(Record):
    """A member anchors a 32-byte digest under a label (e.g. a report's hash)."""

    member: Bytes32
    label: Label
    digest: Bytes32
    nonce: U64


@dataclass(frozen=True, slots=True)
class NewAsset(Record):
    asset_id: Bytes32
    symbol: Name


@dataclass(frozen=True, slots=True)
class RegisterMemberBody(Record):
    """Governance: admit a bank, with the assets it will issue. Needs a member quorum.

    ``proof_of_possession`` is the new member key's ed25519 signature over
    ``member_pop_payload(member_key, memo_public_key, name)`` under
    ``TAG_REGISTER_MEMBER_POP`` and the chain id: the bank holds the key and
    consents to join with this memo key and name. Without it any 32 bytes could
    become a member no one can sign for, whose approval every later quorum
    might need (issue 8, §2.4).
    """

    proposer: Bytes32
    member_key: Bytes32
    memo_public_key: Bytes32
    name: Name
    assets: Annotated[tuple[NewAsset, ...], MaxLen(MAX_NEW_ASSETS)]
    nonce: U64
    proof_of_possession: Bytes64


@dataclass(frozen=True, slots=True)
class MemberPossession(Record):
    """What a new member key signs to consent to joining (see ``member_pop_payload``)."""

    member_key: Bytes32
    memo_public_key: Bytes32
    name: Name


def member_pop_payload(member_key: bytes, memo_public_key: bytes, name: str) -> bytes:
    """The payload of a new member's proof of possession, signed under
    ``TAG_REGISTER_MEMBER_POP``. The proposer and the nonce are left out: any
    member may propose the admission, and a key is admitted at most once."""
    return MemberPossession(member_key, memo_public_key, name).encode()


@dataclass(frozen=True, slots=True)
class RemoveMemberBody(Record):
    """Governance: remove a member bank. Needs a quorum of the OTHER members
    (``ledger.rules.removal_quorum``), so a member that lost its key, or never had
    one, cannot block its own removal; the removed member neither proposes nor
    approves. Its account, outputs and asset records stay; it can no longer act
    as a member (issue, register accounts, attest, approve)."""

    proposer: Bytes32
    member_key: Bytes32
    nonce: U64


@dataclass(frozen=True, slots=True)
class SetAuditorKeyBody(Record):
    """Governance: rotate the auditor's X25519 memo key. Needs a member quorum."""

    proposer: Bytes32
    auditor_memo_public_key: Bytes32
    nonce: U64


@dataclass(frozen=True, slots=True)
class Approval(Record):
    member: Bytes32
    signature: Bytes64
    """ed25519 over sign(TAG_APPROVE, chain_id, tx_id)."""


@dataclass(frozen=True, slots=True)
class Approvals(Record):
    approvals: Annotated[tuple[Approval, ...], MaxLen(MAX_APPROVALS)]


@dataclass(frozen=True, slots=True)
class LoanTerms(Record):
    """The public terms of a loan (see docs/loans.md)."""

    rate_bps: U32
    """Interest per period in basis points: I = ⌊v·rate_bps / 10 000⌋."""
    period_blocks: U64
    maturity_height: U64
    purpose: Label


@dataclass(frozen=True, slots=True)
class LoanMemos(Record):
    """One opening (value, blinding) sealed to the lender, the borrower and the auditor."""

    lender_memo: Memo
    borrower_memo: Memo
    audit_memo: Memo


@dataclass(frozen=True, slots=True)
class LoanConsent(Record):
    """What the borrower signs under ``TAG_LOAN_CONSENT``: no loan without it.

    ``consent_nonce`` must be above the borrower's last used nonce, so one
    consent makes at most one loan.
    """

    lender: Bytes32
    borrower: Bytes32
    asset: Bytes32
    terms: LoanTerms
    disbursement: Bytes32
    consent_nonce: U64


@dataclass(frozen=True, slots=True)
class LoanOriginateBody(Record):
    """The lender spends ``inputs`` into ``outputs``; ``outputs[0]`` is the disbursement
    to the borrower and becomes the loan's principal and outstanding commitment.
    Witness: the excess proof, as for a transfer. The loan id is this tx id."""

    lender: Bytes32
    borrower: Bytes32
    asset: Bytes32
    terms: LoanTerms
    inputs: Annotated[tuple[OutputId, ...], MaxLen(MAX_INPUTS)]
    outputs: Outputs
    range_proof: RangeProofBytes
    principal_memos: LoanMemos
    consent_nonce: U64
    borrower_consent: Bytes64


@dataclass(frozen=True, slots=True)
class LoanRepayBody(Record):
    """The borrower pays ``outputs[0]`` to the lender out of ``inputs``.

    Validators compute outstanding' = outstanding − outputs[0].commitment;
    ``outstanding_proof`` shows it in [0, 2^64) (no overpayment); ``memos``
    carry its opening. Witness: the excess proof."""

    borrower: Bytes32
    loan_id: Bytes32
    asset: Bytes32
    """Must be the loan's asset (``WRONG_ASSET``); here so scans need no state."""
    inputs: Annotated[tuple[OutputId, ...], MaxLen(MAX_INPUTS)]
    outputs: Outputs
    range_proof: RangeProofBytes
    outstanding_proof: RangeProofBytes
    memos: LoanMemos


@dataclass(frozen=True, slots=True)
class LoanAccrueBody(Record):
    """The lender adds the interest of ``period`` (1, 2, ...): ``interest`` = C_I,
    ``proof`` the aggregated range proof of the four derived commitments
    (``ledger.loans.accrual_commitments``), ``memos`` the opening of C_I."""

    lender: Bytes32
    loan_id: Bytes32
    period: U64
    interest: Bytes32
    proof: RangeProofBytes
    memos: LoanMemos


@dataclass(frozen=True, slots=True)
class LoanCloseBody(Record):
    """The borrower closes a repaid loan. Witness: a Schnorr proof on H over the tx
    id that the outstanding commitment is r·H (opens to zero)."""

    borrower: Bytes32
    loan_id: Bytes32


LOAN_BODIES: Final = (LoanOriginateBody, LoanRepayBody, LoanAccrueBody, LoanCloseBody)

Body = (
    RegisterAccountBody
    | IssueBody
    | TransferBody
    | AttestBody
    | RegisterMemberBody
    | SetAuditorKeyBody
    | RemoveMemberBody
    | LoanOriginateBody
    | LoanRepayBody
    | LoanAccrueBody
    | LoanCloseBody
)

BODY_TYPES: Final[dict[bytes, type[Record]]] = {
    TAG_REGISTER_ACCOUNT: RegisterAccountBody,
    TAG_ISSUE: IssueBody,
    TAG_TRANSFER: TransferBody,
    TAG_ATTEST: AttestBody,
    TAG_REGISTER_MEMBER: RegisterMemberBody,
    TAG_SET_AUDITOR_KEY: SetAuditorKeyBody,
    TAG_REMOVE_MEMBER: RemoveMemberBody,
    TAG_LOAN_ORIGINATE: LoanOriginateBody,
    TAG_LOAN_REPAY: LoanRepayBody,
    TAG_LOAN_ACCRUE: LoanAccrueBody,
    TAG_LOAN_CLOSE: LoanCloseBody,
}
TAG_OF: Final[dict[type[Record], bytes]] = {cls: tag for tag, cls in BODY_TYPES.items()}
GOVERNANCE_TAGS: Final = frozenset({TAG_REGISTER_MEMBER, TAG_SET_AUDITOR_KEY, TAG_REMOVE_MEMBER})


@dataclass(frozen=True, slots=True)
class Tx(Record):
    """The envelope that travels, is stored and goes into blocks."""

    kind: Annotated[bytes, MaxLen(64)]
    body: bytes
    signature: Bytes64
    witness: bytes


def signer_of(body: Body) -> bytes:
    """The public key whose ed25519 signature authorises ``body``."""
    if isinstance(body, RegisterAccountBody):
        return body.registrar
    if isinstance(body, IssueBody):
        return body.issuer
    if isinstance(body, TransferBody):
        return body.sender
    if isinstance(body, AttestBody):
        return body.member
    if isinstance(body, (LoanOriginateBody, LoanAccrueBody)):
        return body.lender
    if isinstance(body, (LoanRepayBody, LoanCloseBody)):
        return body.borrower
    return body.proposer


def tx_id_of(kind: bytes, body_bytes: bytes, chain_id: bytes) -> bytes:
    """SHA-256 of exactly the bytes the sender signs."""
    return hashlib.sha256(signing_bytes(kind, chain_id, body_bytes)).digest()


def output_id_of(tx_id: bytes, index: int) -> bytes:
    """``tx_id || index``: unique because tx ids are, and it names the creating tx.

    Anyone holding an output id can find the tx that created it (and so its
    memos) through the store's tx index, which is why the state does not keep
    the tx id beside each output.
    """
    if len(tx_id) != 32 or not 0 <= index < MAX_OUTPUTS:
        raise ValueError("an output id is a 32-byte tx id and an index below MAX_OUTPUTS")
    return tx_id + bytes([index])


def split_output_id(output_id: bytes) -> tuple[bytes, int]:
    """``(tx id, index)`` of an output id."""
    if len(output_id) != OUTPUT_ID_BYTES:
        raise ValueError(f"an output id is {OUTPUT_ID_BYTES} bytes")
    return output_id[:32], output_id[32]


@dataclass(frozen=True, slots=True)
class DecodedTx:
    """A tx after stateless decoding: the envelope, its typed body and its id."""

    tx: Tx
    body: Body
    tx_id: bytes
    size_bytes: int

    @property
    def kind(self) -> bytes:
        return self.tx.kind

    @property
    def signer(self) -> bytes:
        return signer_of(self.body)

    def output_ids(self) -> tuple[bytes, ...]:
        outputs = getattr(self.body, "outputs", ())
        return tuple(output_id_of(self.tx_id, i) for i in range(len(outputs)))


def decode_tx(data: bytes, chain_id: bytes, *, max_tx_bytes: int) -> DecodedTx:
    """Decode an envelope and its body, or raise ``TxRejected`` (TOO_LARGE, MALFORMED,
    UNKNOWN_KIND). Decoding is strict: only the canonical encoding is accepted."""
    if len(data) > max_tx_bytes:
        raise TxRejected(Reason.TOO_LARGE, f"{len(data)} bytes > {max_tx_bytes}")
    try:
        tx = Tx.decode(data, max_bytes=max_tx_bytes)
    except DecodeError as exc:
        raise TxRejected(Reason.MALFORMED, f"envelope: {exc}") from None
    return decode_envelope(tx, chain_id, size_bytes=len(data))


def _bin_size(length: int) -> int:
    """Bytes msgpack uses for a ``bin`` of ``length`` bytes (bin8/bin16/bin32 header + data)."""
    if length < 1 << 8:
        return 2 + length
    if length < 1 << 16:
        return 3 + length
    return 5 + length


def encoded_size(tx: Tx) -> int:
    """``len(tx.encode())`` without encoding: a fixarray of four byte strings."""
    return 1 + sum(_bin_size(len(part)) for part in (tx.kind, tx.body, tx.signature, tx.witness))


def decode_envelope(tx: Tx, chain_id: bytes, *, size_bytes: int | None = None) -> DecodedTx:
    """Decode the body of an already decoded envelope."""
    body_type = BODY_TYPES.get(tx.kind)
    if body_type is None:
        raise TxRejected(Reason.UNKNOWN_KIND, f"kind {tx.kind[:64]!r}")
    try:
        body = body_type.decode(tx.body)
    except DecodeError as exc:
        raise TxRejected(Reason.MALFORMED, f"body: {exc}") from None
    size = encoded_size(tx) if size_bytes is None else size_bytes
    typed = typing.cast(Body, body)
    return DecodedTx(tx, typed, tx_id_of(tx.kind, tx.body, chain_id), size)


ConfidentialBody = IssueBody | TransferBody | LoanOriginateBody | LoanRepayBody
"""The bodies that create confidential outputs (each has ``asset`` and ``outputs``)."""
SpendingBody = TransferBody | LoanOriginateBody | LoanRepayBody
"""The bodies that spend ``inputs``."""


def confidential_bodies(
    txs: Iterable[Tx], chain_id: bytes
) -> Iterator[tuple[bytes, ConfidentialBody]]:
    """(tx id, body) of every tx among ``txs`` that decodes and creates outputs."""
    for tx in txs:
        body_type = BODY_TYPES.get(tx.kind)
        if body_type is None:
            continue
        try:
            body = body_type.decode(tx.body)
        except DecodeError:
            continue  # a committed block never holds one
        if isinstance(body, (IssueBody, TransferBody, LoanOriginateBody, LoanRepayBody)):
            yield tx_id_of(tx.kind, tx.body, chain_id), body
