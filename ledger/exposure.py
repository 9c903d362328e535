"""Proofs a borrower shows off chain, checked against the chain state at height h.

**Exposure proof**: "the outstanding balances of all my active loans at h add up
to at most L". A range proof that ``L·G − Σ C_out,i`` opens to a value in
[0, 2^64), where the C_out,i are read by the VERIFIER from the state's
borrower → loans index (``ledger.loans.loans_of``), not taken from the prover.
Each v_i < 2^64 and there are far fewer than 2^180 loans, so the value is
L − Σ v_i over the integers: no proof exists for a limit below the true total.

**Minimum-balance proof**: "my outputs of asset A at h hold at least X": a range
proof that ``Σ C_j − X·G`` is in [0, 2^64) over unspent outputs the verifier
checks are the owner's (a subset suffices: the balance is at least its sum).

Both transcripts are labelled with the SHA-256 of a canonical context (domain
tag, chain id, the party, h, the bound and the ids), so a proof cannot be
replayed for another borrower, height, limit, chain or set of loans. All loans
are in one currency unit (docs/loans.md): the exposure sums every active loan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Final

from ledger.codec import U64, Bytes32, MaxLen, Record
from ledger.loans import LoanRecord, loans_of
from ledger.rules import OutputRecord, get_clock, get_output, sum_points
from ledger.state import StateReader
from ledger.tx import MAX_INPUTS, RANGE_BITS, OutputId
from privacy import group
from privacy.memo import Opening
from privacy.rangeproof import RangeProofError, RangeStatement, prove_range, verify_range

EXPOSURE_TAG: Final = b"veil/proof/exposure/v1"
MIN_BALANCE_TAG: Final = b"veil/proof/min_balance/v1"
MAX_PROOF_LOANS: Final = 256
MAX_PROOF_BYTES: Final = 1024

LoanIds = Annotated[tuple[Bytes32, ...], MaxLen(MAX_PROOF_LOANS)]
ProofBytes = Annotated[bytes, MaxLen(MAX_PROOF_BYTES)]


@dataclass(frozen=True, slots=True)
class ProofContext(Record):
    """What a proof's transcript label commits to."""

    tag: Annotated[bytes, MaxLen(64)]
    chain_id: Bytes32
    party: Bytes32
    height: U64
    bound: U64
    ids: Annotated[tuple[bytes, ...], MaxLen(MAX_PROOF_LOANS)]
    asset: bytes


def context_label(context: ProofContext) -> bytes:
    return hashlib.sha256(context.encode()).digest()


@dataclass(frozen=True, slots=True)
class ExposureProof(Record):
    chain_id: Bytes32
    borrower: Bytes32
    height: U64
    limit: U64
    loan_ids: LoanIds
    proof: ProofBytes

    def context(self) -> ProofContext:
        return ProofContext(
            EXPOSURE_TAG, self.chain_id, self.borrower, self.height, self.limit, self.loan_ids, b""
        )


@dataclass(frozen=True, slots=True)
class MinBalanceProof(Record):
    chain_id: Bytes32
    owner: Bytes32
    height: U64
    asset: Bytes32
    minimum: U64
    output_ids: Annotated[tuple[OutputId, ...], MaxLen(MAX_INPUTS)]
    proof: ProofBytes

    def context(self) -> ProofContext:
        return ProofContext(
            MIN_BALANCE_TAG,
            self.chain_id,
            self.owner,
            self.height,
            self.minimum,
            self.output_ids,
            self.asset,
        )


class ProofRefusedError(ValueError):
    """The prover cannot make this proof (e.g. a limit below the true total)."""


def state_height(state: StateReader) -> int:
    clock = get_clock(state)
    return 0 if clock is None else clock.height


def exposure_commitment(limit: int, loans: list[tuple[bytes, LoanRecord]]) -> bytes:
    """``L·G − Σ C_out,i``."""
    return group.sub(group.mul_base(limit), sum_points(loan.outstanding for _, loan in loans))


def prove_exposure(
    state: StateReader,
    chain_id: bytes,
    borrower: bytes,
    limit: int,
    *,
    openings: Mapping[bytes, Opening],
) -> ExposureProof:
    """The borrower's proof over every active loan the state lists at its height.

    ``openings``: the outstanding opening of each loan by id (the wallet's, from
    the memos). Raises ``ProofRefusedError`` if one is missing or stale, or if the
    total exceeds ``limit``.
    """
    return prove_exposure_over(
        loans_of(state, borrower), state_height(state), chain_id, borrower, limit, openings=openings
    )


def prove_exposure_over(
    loans: Sequence[tuple[bytes, LoanRecord]],
    height: int,
    chain_id: bytes,
    borrower: bytes,
    limit: int,
    *,
    openings: Mapping[bytes, Opening],
) -> ExposureProof:
    """``prove_exposure`` over ``loans``, every loan of ``borrower`` at ``height`` as the
    chain lists it (``loans_of`` of the state at h, or a node's
    ``/v1/borrowers/{pk}/loans?height=h``)."""
    active = [(lid, loan) for lid, loan in loans if not loan.closed]
    value, blinding = limit, 0
    for loan_id, loan in active:
        opening = openings.get(loan_id)
        if opening is None or opening.commitment() != loan.outstanding:
            raise ProofRefusedError(f"no current opening of loan {loan_id.hex()[:16]}")
        value -= opening.value
        blinding -= opening.blinding
    if value < 0:
        raise ProofRefusedError(f"the outstanding total exceeds the limit {limit}")
    unsigned = ExposureProof(
        chain_id, borrower, height, limit, tuple(lid for lid, _ in active), b""
    )
    proof, _ = prove_range(
        [value],
        [blinding % group.ORDER],
        RANGE_BITS,
        label=context_label(unsigned.context()),
    )
    return ExposureProof(chain_id, borrower, height, limit, unsigned.loan_ids, proof)


def _range_holds(commitment: bytes, proof: bytes, label: bytes) -> bool:
    try:
        verify_range(RangeStatement((commitment,), proof, RANGE_BITS, label=label))
    except RangeProofError:
        return False
    return True


def exposure_problem(state: StateReader, chain_id: bytes, proof: ExposureProof) -> str | None:
    """``None`` if ``proof`` holds against ``state`` (at the proof's height), else why not."""
    return exposure_problem_over(
        loans_of(state, proof.borrower), state_height(state), chain_id, proof
    )


def exposure_problem_over(
    loans: Sequence[tuple[bytes, LoanRecord]], height: int, chain_id: bytes, proof: ExposureProof
) -> str | None:
    """``exposure_problem`` against ``loans``, every loan of the proof's borrower at
    ``height`` as the chain lists it (the verifier's read, never the prover's list)."""
    if proof.chain_id != chain_id:
        return "WRONG_CHAIN"
    if height != proof.height:
        return f"WRONG_HEIGHT: the state is at {height}, the proof at {proof.height}"
    if any(loan.borrower != proof.borrower for _, loan in loans):
        return "LOANS_DIFFER: a listed loan is another borrower's"
    active = [(lid, loan) for lid, loan in loans if not loan.closed]
    if tuple(lid for lid, _ in active) != proof.loan_ids:
        return "LOANS_DIFFER: the proof does not cover exactly the borrower's active loans"
    commitment = exposure_commitment(proof.limit, active)
    if not _range_holds(commitment, proof.proof, context_label(proof.context())):
        return "BAD_PROOF"
    return None


def prove_min_balance(
    state: StateReader,
    chain_id: bytes,
    owner: bytes,
    *,
    asset: bytes,
    minimum: int,
    outputs: Mapping[bytes, Opening],
) -> MinBalanceProof:
    """Prove the owner's ``outputs`` (id → opening, unspent at the state's height) hold
    at least ``minimum``. Raises ``ProofRefusedError`` if they hold less."""
    return prove_min_balance_at(
        state_height(state), chain_id, owner, asset=asset, minimum=minimum, outputs=outputs
    )


def prove_min_balance_at(
    height: int,
    chain_id: bytes,
    owner: bytes,
    *,
    asset: bytes,
    minimum: int,
    outputs: Mapping[bytes, Opening],
) -> MinBalanceProof:
    """``prove_min_balance`` for outputs unspent at ``height`` (a wallet synced to it)."""
    ids = tuple(sorted(outputs))
    value = sum(outputs[i].value for i in ids) - minimum
    if value < 0:
        raise ProofRefusedError(f"these outputs hold less than {minimum}")
    blinding = sum(outputs[i].blinding for i in ids) % group.ORDER
    unsigned = MinBalanceProof(chain_id, owner, height, asset, minimum, ids, b"")
    proof, _ = prove_range([value], [blinding], RANGE_BITS, label=context_label(unsigned.context()))
    return MinBalanceProof(chain_id, owner, unsigned.height, asset, minimum, ids, proof)


def min_balance_problem(state: StateReader, chain_id: bytes, proof: MinBalanceProof) -> str | None:
    """``None`` if ``proof`` holds against ``state``, else why not."""
    return min_balance_problem_over(
        lambda output_id: get_output(state, output_id), state_height(state), chain_id, proof
    )


UnspentAt = Callable[[bytes], OutputRecord | None]
"""An output id -> its record if it was unspent at the height checked, else ``None``."""


def min_balance_problem_over(
    unspent_at: UnspentAt, height: int, chain_id: bytes, proof: MinBalanceProof
) -> str | None:
    """``min_balance_problem`` with the outputs read through ``unspent_at`` (the state at
    ``height``, or a node's answers about each output)."""
    if proof.chain_id != chain_id:
        return "WRONG_CHAIN"
    if height != proof.height:
        return f"WRONG_HEIGHT: the state is at {height}, the proof at {proof.height}"
    if not proof.output_ids or len(set(proof.output_ids)) != len(proof.output_ids):
        return "BAD_OUTPUTS: none, or one listed twice"
    commitments = []
    for output_id in proof.output_ids:
        record = unspent_at(output_id)
        if record is None or record.owner != proof.owner or record.asset != proof.asset:
            return f"BAD_OUTPUTS: {output_id.hex()[:16]} is not an unspent output of the owner"
        commitments.append(record.commitment)
    commitment = group.sub(sum_points(commitments), group.mul_base(proof.minimum))
    if not _range_holds(commitment, proof.proof, context_label(proof.context())):
        return "BAD_PROOF"
    return None
