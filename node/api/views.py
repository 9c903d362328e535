"""JSON views of ledger and consensus records: what the API shows, and what it never does.

Bytes are lowercase hex (ids, keys, commitments) or base64 (memos, opaque
blobs). A view never holds an amount: commitments and sealed memos only. A
public issue's total is chain data shown per asset in ``/v1/chain``, not per tx.
"""

from __future__ import annotations

import base64

from consensus.certificate import CommitCertificate
from consensus.wire import WireError, decode_certificate
from ledger.block import decode_block
from ledger.codec import DecodeError
from ledger.genesis import Genesis
from ledger.invariants import InvariantViolation
from ledger.reasons import TxRejected
from ledger.tx import (
    BODY_TYPES,
    LOAN_BODIES,
    IssueBody,
    LoanAccrueBody,
    LoanCloseBody,
    LoanOriginateBody,
    LoanRepayBody,
    RegisterAccountBody,
    TransferBody,
    Tx,
    TxOutput,
    output_id_of,
    signer_of,
    tx_id_of,
)

Json = dict[str, object]
LoanBody = LoanOriginateBody | LoanRepayBody | LoanAccrueBody | LoanCloseBody


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def certificate_view(raw: bytes) -> Json | None:
    """A stored commit certificate, decoded; ``None`` for height 0 (genesis has none)."""
    if not raw:
        return None
    try:
        certificate: CommitCertificate = decode_certificate(raw)
    except WireError as exc:
        # Consensus made it and the store keeps it whole: a bad one is local damage.
        raise InvariantViolation(f"stored certificate does not decode: {exc}") from exc
    return {
        "view": certificate.view,
        "seq": certificate.seq,
        "digest": certificate.digest.hex(),
        "commits": [
            {"sender": commit.sender, "signature": commit.signature.hex()}
            for commit in certificate.commits
        ],
    }


def _outputs(tx_id: bytes, outputs: tuple[TxOutput, ...]) -> list[Json]:
    return [
        {
            "id": output_id_of(tx_id, index).hex(),
            "owner": output.owner.hex(),
            "commitment": output.commitment.hex(),
        }
        for index, output in enumerate(outputs)
    ]


def _loan_fields(tx_id: bytes, body: LoanBody) -> Json:
    """A loan tx's public fields: the loan (its id is the originating tx's id), the
    parties, the terms at origination, and for an accrual the interest commitment."""
    if isinstance(body, LoanOriginateBody):
        terms = body.terms
        return {
            "loan_id": tx_id.hex(),
            "lender": body.lender.hex(),
            "borrower": body.borrower.hex(),
            "asset": body.asset.hex(),
            "rate_bps": terms.rate_bps,
            "period_blocks": terms.period_blocks,
            "maturity_height": terms.maturity_height,
            "purpose": terms.purpose,
            "inputs": [input_id.hex() for input_id in body.inputs],
            "outputs": _outputs(tx_id, body.outputs),
            "proof_bytes": len(body.range_proof),
        }
    if isinstance(body, LoanRepayBody):
        return {
            "loan_id": body.loan_id.hex(),
            "borrower": body.borrower.hex(),
            "asset": body.asset.hex(),
            "inputs": [input_id.hex() for input_id in body.inputs],
            "outputs": _outputs(tx_id, body.outputs),
            "proof_bytes": len(body.range_proof) + len(body.outstanding_proof),
        }
    if isinstance(body, LoanAccrueBody):
        return {
            "loan_id": body.loan_id.hex(),
            "lender": body.lender.hex(),
            "period": body.period,
            "interest_commitment": body.interest.hex(),
            "proof_bytes": len(body.proof),
        }
    return {"loan_id": body.loan_id.hex(), "borrower": body.borrower.hex()}


def tx_view(tx: Tx, chain_id: bytes) -> Json:
    """A committed tx: id, kind, signer and its public fields: for issues, transfers
    and loans the asset, inputs, output commitments and range-proof sizes; for loans
    the loan id and terms. Never the issue amount or any opening."""
    tx_id = tx_id_of(tx.kind, tx.body, chain_id)
    view: Json = {"id": tx_id.hex(), "kind": tx.kind.decode("ascii", "replace")}
    body_type = BODY_TYPES.get(tx.kind)
    if body_type is None:
        return view
    try:
        body = body_type.decode(tx.body)
    except DecodeError:
        return view
    view["signer"] = signer_of(body).hex()  # type: ignore[arg-type]
    if isinstance(body, IssueBody):
        view["asset"] = body.asset.hex()
        view["outputs"] = _outputs(tx_id, body.outputs)
        view["proof_bytes"] = len(body.range_proof)
    elif isinstance(body, TransferBody):
        view["asset"] = body.asset.hex()
        view["inputs"] = [input_id.hex() for input_id in body.inputs]
        view["outputs"] = _outputs(tx_id, body.outputs)
        view["proof_bytes"] = len(body.range_proof)
    elif isinstance(body, RegisterAccountBody):
        view["account"] = body.account_key.hex()
        view["memo_public_key"] = body.memo_public_key.hex()
    elif isinstance(body, LOAN_BODIES):
        view |= _loan_fields(tx_id, body)
    return view


def block_view(
    height: int, block_hash: bytes, block_bytes: bytes, certificate: bytes, genesis: Genesis
) -> Json:
    """The block at ``height``: header, txs, certificate. Height 0 is the genesis."""
    if height == 0:
        return {
            "height": 0,
            "hash": block_hash.hex(),
            "genesis": True,
            "header": None,
            "txs": [],
            "certificate": None,
        }
    try:
        block = decode_block(block_bytes)
    except TxRejected as exc:
        raise InvariantViolation(f"stored block {height} does not decode: {exc}") from exc
    header = block.header
    return {
        "height": height,
        "hash": block_hash.hex(),
        "genesis": False,
        "header": {
            "version": header.version,
            "height": header.height,
            "prev_hash": header.prev_hash.hex(),
            "tx_root": header.tx_root.hex(),
            "state_root": header.state_root.hex(),
            "proposer": header.proposer.hex(),
            "view": header.view,
            "timestamp_ms": header.timestamp_ms,
        },
        "txs": [tx_view(tx, genesis.chain_id) for tx in block.txs],
        "certificate": certificate_view(certificate),
    }
