"""Transaction builders: the only place that turns secrets (keys, amounts, blindings) into txs.

Confidential outputs are built in two steps so that tests can assemble
deliberately wrong txs from the same parts the honest path uses:

1. ``seal_outputs(plans, asset, auditor_key)`` picks random blindings, commits,
   proves the aggregated range proof and seals a memo to the owner and one to
   the auditor, returning the ``TxOutput`` records, their openings and the proof.
   The audit memo discloses the owner memo's ephemeral key
   (``ledger.memo_binding``), so the auditor can check the owner can open it;
2. ``sign_tx(identity, body, chain_id, excess_blinding=x)`` signs the body and
   adds the excess proof (a Schnorr signature with key ``x`` on ``H`` over the
   tx id) as the witness.

The excess blinding is ``x = Σ r_inputs − Σ r_outputs`` for a transfer and
``x = −Σ r_outputs`` for an issue (whose ``amount·G`` has no blinding). It
must be non-zero, so outputs are re-blinded in the (2^-252) case where it is.

Output counts must be a power of two (the aggregated proof's m, see
``ledger.rules``). ``build_transfer`` pads with zero-value outputs back to the
sender; nothing else pads, so a caller sees exactly what goes on chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.codec import Record
from ledger.identity import SigningIdentity, verify_signature
from ledger.memo_binding import audit_opening, seal_owner_memo
from ledger.memo_key import memo_key_problem
from ledger.tx import (
    MAX_INPUTS,
    MAX_OUTPUTS,
    RANGE_BITS,
    TAG_APPROVE,
    TAG_OF,
    TAG_REGISTER_ACCOUNT_POP,
    TAG_REGISTER_MEMBER_POP,
    Approval,
    Approvals,
    AttestBody,
    IssueBody,
    NewAsset,
    RegisterAccountBody,
    RegisterMemberBody,
    RemoveMemberBody,
    SetAuditorKeyBody,
    TransferBody,
    Tx,
    TxOutput,
    member_pop_payload,
    output_id_of,
    pop_payload,
    tx_id_of,
)
from privacy import group
from privacy.memo import Opening, seal_memo
from privacy.rangeproof import prove_range
from privacy.sigma import prove_excess


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """An output to create: who owns it, where its memo goes, how much, and a note."""

    owner: bytes
    owner_memo_key: bytes
    value: int
    note: bytes = b""


@dataclass(frozen=True, slots=True)
class SealedOutputs:
    outputs: tuple[TxOutput, ...]
    openings: tuple[Opening, ...] = field(repr=False)
    """Values and blindings: secrets, kept out of the repr."""
    range_proof: bytes


@dataclass(frozen=True, slots=True)
class BuiltTx:
    """A signed tx with its id and the openings of the outputs it creates."""

    tx: Tx
    tx_id: bytes
    openings: tuple[Opening, ...] = field(default=(), repr=False)
    """Values and blindings of the created outputs: secrets, kept out of the repr."""

    def encode(self) -> bytes:
        return self.tx.encode()

    def output_ids(self) -> tuple[bytes, ...]:
        return tuple(output_id_of(self.tx_id, i) for i in range(len(self.openings)))


def is_power_of_two_count(count: int) -> bool:
    return 0 < count <= MAX_OUTPUTS and count & (count - 1) == 0


def seal_outputs(
    plans: Sequence[OutputPlan],
    asset: bytes,
    auditor_memo_key: bytes,
    *,
    blindings: Sequence[int] | None = None,
) -> SealedOutputs:
    """Commit to each plan, prove all values in [0, 2^64) at once, seal both memos."""
    if not is_power_of_two_count(len(plans)):
        raise ValueError(f"{len(plans)} outputs: must be a power of two up to {MAX_OUTPUTS}")
    chosen = list(blindings) if blindings is not None else [group.random_scalar() for _ in plans]
    if len(chosen) != len(plans):
        raise ValueError("one blinding per output")
    values = [plan.value for plan in plans]
    proof, commitments = prove_range(values, chosen, RANGE_BITS)
    openings = tuple(
        Opening(plan.value, r % group.ORDER, asset, plan.note)
        for plan, r in zip(plans, chosen, strict=True)
    )
    outputs = []
    for plan, opening, commitment in zip(plans, openings, commitments, strict=True):
        owner_memo, owner_ephemeral_secret = seal_owner_memo(opening, plan.owner_memo_key)
        audit_memo = seal_memo(audit_opening(opening, owner_ephemeral_secret), auditor_memo_key)
        outputs.append(TxOutput(plan.owner, commitment, owner_memo, audit_memo))
    return SealedOutputs(tuple(outputs), openings, proof)


def sign_tx(
    identity: SigningIdentity,
    body: Record,
    chain_id: bytes,
    *,
    excess_blinding: int | None = None,
    witness: bytes = b"",
) -> BuiltTx:
    """Sign ``body`` under its kind's tag; with ``excess_blinding``, prove the excess."""
    kind = TAG_OF[type(body)]
    body_bytes = body.encode()
    tx_id = tx_id_of(kind, body_bytes, chain_id)
    if excess_blinding is not None:
        witness = prove_excess(excess_blinding, tx_id)
    signature = identity.sign(kind, chain_id, body_bytes)
    return BuiltTx(Tx(kind, body_bytes, signature, witness), tx_id)


def build_issue(
    issuer: SigningIdentity,
    chain_id: bytes,
    asset: bytes,
    plans: Sequence[OutputPlan],
    auditor_memo_key: bytes,
    *,
    nonce: int,
) -> BuiltTx:
    """Mint ``Σ plan.value`` (made public as the issue amount) into confidential outputs."""
    amount = sum(plan.value for plan in plans)
    while True:
        sealed = seal_outputs(plans, asset, auditor_memo_key)
        excess = -sum(o.blinding for o in sealed.openings) % group.ORDER
        if excess:
            break
    body = IssueBody(issuer.public_key, asset, amount, sealed.outputs, sealed.range_proof, nonce)
    built = sign_tx(issuer, body, chain_id, excess_blinding=excess)
    return BuiltTx(built.tx, built.tx_id, sealed.openings)


def build_transfer(
    sender: SigningIdentity,
    sender_memo_key: bytes,
    chain_id: bytes,
    *,
    asset: bytes,
    inputs: Sequence[tuple[bytes, Opening]],
    plans: Sequence[OutputPlan],
    auditor_memo_key: bytes,
) -> BuiltTx:
    """Spend ``inputs`` (id, opening) into ``plans``; the values must balance exactly.

    Pads the outputs to a power of two with zero-value outputs to the sender.
    """
    if not inputs:
        raise ValueError("a transfer spends at least one input")
    if len(inputs) > MAX_INPUTS:
        raise ValueError(f"{len(inputs)} inputs: a transfer spends at most {MAX_INPUTS}")
    if any(opening.asset != asset for _, opening in inputs):
        raise ValueError("every input must hold the transfer's asset")
    total_in = sum(opening.value for _, opening in inputs)
    total_out = sum(plan.value for plan in plans)
    if total_in != total_out:
        raise ValueError(f"inputs hold {total_in}, outputs {total_out}: add a change output")
    padded = list(plans)
    while not is_power_of_two_count(len(padded)):
        if len(padded) >= MAX_OUTPUTS:
            raise ValueError(f"at most {MAX_OUTPUTS} outputs")
        padded.append(OutputPlan(sender.public_key, sender_memo_key, 0))
    r_in = sum(opening.blinding for _, opening in inputs)
    while True:
        sealed = seal_outputs(padded, asset, auditor_memo_key)
        excess = (r_in - sum(o.blinding for o in sealed.openings)) % group.ORDER
        if excess:
            break
    body = TransferBody(
        sender.public_key,
        asset,
        tuple(output_id for output_id, _ in inputs),
        sealed.outputs,
        sealed.range_proof,
    )
    built = sign_tx(sender, body, chain_id, excess_blinding=excess)
    return BuiltTx(built.tx, built.tx_id, sealed.openings)


def _require_memo_key(memo_public_key: bytes) -> None:
    problem = memo_key_problem(memo_public_key)
    if problem is not None:
        raise ValueError(f"unusable memo key: {problem}")


def prove_account_possession(
    account: SigningIdentity, chain_id: bytes, *, registrar: bytes, memo_public_key: bytes
) -> bytes:
    """The account's consent to be registered by ``registrar`` with ``memo_public_key``
    on this chain: made by the account holder and handed to its bank."""
    _require_memo_key(memo_public_key)
    payload = pop_payload(registrar, account.public_key, memo_public_key)
    return account.sign(TAG_REGISTER_ACCOUNT_POP, chain_id, payload)


def build_register_account(
    registrar: SigningIdentity,
    chain_id: bytes,
    account_key: bytes,
    memo_public_key: bytes,
    *,
    proof_of_possession: bytes,
    nonce: int,
) -> BuiltTx:
    """Register ``account_key`` with the PoP its holder made (``prove_account_possession``).

    Refuses (``ValueError``) a memo key or a PoP the chain would reject.
    """
    _require_memo_key(memo_public_key)
    payload = pop_payload(registrar.public_key, account_key, memo_public_key)
    if not verify_signature(
        account_key, TAG_REGISTER_ACCOUNT_POP, chain_id, payload, proof_of_possession
    ):
        raise ValueError(
            "the proof of possession is not the account key's signature over this "
            "registrar, account key and memo key on this chain"
        )
    body = RegisterAccountBody(
        registrar.public_key, account_key, memo_public_key, nonce, proof_of_possession
    )
    return sign_tx(registrar, body, chain_id)


def build_attest(
    member: SigningIdentity, chain_id: bytes, label: str, digest: bytes, *, nonce: int
) -> BuiltTx:
    return sign_tx(member, AttestBody(member.public_key, label, digest, nonce), chain_id)


def approve(member: SigningIdentity, chain_id: bytes, tx_id: bytes) -> Approval:
    """A member's approval of a governance tx (signs its id under the approval tag)."""
    return Approval(member.public_key, member.sign(TAG_APPROVE, chain_id, tx_id))


def _governance(
    proposer: SigningIdentity,
    approvers: Sequence[SigningIdentity],
    body: Record,
    chain_id: bytes,
) -> BuiltTx:
    unsigned = sign_tx(proposer, body, chain_id)
    approvals = Approvals(tuple(approve(m, chain_id, unsigned.tx_id) for m in approvers))
    return sign_tx(proposer, body, chain_id, witness=approvals.encode())


def prove_member_possession(
    member: SigningIdentity, chain_id: bytes, *, memo_public_key: bytes, name: str
) -> bytes:
    """The joining bank's consent to be a member with ``memo_public_key`` and ``name``
    on this chain: made with the new member key and handed to the proposer."""
    _require_memo_key(memo_public_key)
    payload = member_pop_payload(member.public_key, memo_public_key, name)
    return member.sign(TAG_REGISTER_MEMBER_POP, chain_id, payload)


def build_register_member(
    proposer: SigningIdentity,
    approvers: Sequence[SigningIdentity],
    chain_id: bytes,
    *,
    member_key: bytes,
    memo_public_key: bytes,
    name: str,
    assets: Sequence[tuple[bytes, str]] = (),
    proof_of_possession: bytes,
    nonce: int,
) -> BuiltTx:
    """Admit a bank with the PoP it made (``prove_member_possession``); ``approvers`` are
    the other members that co-sign (proposer counts). Refuses (``ValueError``) a memo
    key or a PoP the chain would reject."""
    _require_memo_key(memo_public_key)
    payload = member_pop_payload(member_key, memo_public_key, name)
    if not verify_signature(
        member_key, TAG_REGISTER_MEMBER_POP, chain_id, payload, proof_of_possession
    ):
        raise ValueError(
            "the proof of possession is not the member key's signature over this "
            "member key, memo key and name on this chain"
        )
    body = RegisterMemberBody(
        proposer.public_key,
        member_key,
        memo_public_key,
        name,
        tuple(NewAsset(asset_id, symbol) for asset_id, symbol in assets),
        nonce,
        proof_of_possession,
    )
    return _governance(proposer, approvers, body, chain_id)


def build_remove_member(
    proposer: SigningIdentity,
    approvers: Sequence[SigningIdentity],
    chain_id: bytes,
    *,
    member_key: bytes,
    nonce: int,
) -> BuiltTx:
    """Remove the member ``member_key``; proposer and ``approvers`` are other members."""
    if member_key == proposer.public_key or any(a.public_key == member_key for a in approvers):
        raise ValueError("the member being removed neither proposes nor approves its removal")
    body = RemoveMemberBody(proposer.public_key, member_key, nonce)
    return _governance(proposer, approvers, body, chain_id)


def build_set_auditor_key(
    proposer: SigningIdentity,
    approvers: Sequence[SigningIdentity],
    chain_id: bytes,
    auditor_memo_public_key: bytes,
    *,
    nonce: int,
) -> BuiltTx:
    _require_memo_key(auditor_memo_public_key)
    body = SetAuditorKeyBody(proposer.public_key, auditor_memo_public_key, nonce)
    return _governance(proposer, approvers, body, chain_id)
