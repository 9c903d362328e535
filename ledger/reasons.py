"""Stable reason codes for rejected transactions and blocks.

Why an ``Enum`` of ``str``: the codes cross process boundaries (HTTP API, tx
status, logs, metrics labels), so their spelling is part of the protocol.
Never rename or reuse a code; add new ones at the end of their group.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a transaction or a block was rejected."""

    # --- stateless: the bytes alone are wrong -------------------------------------
    MALFORMED = "MALFORMED"
    """Not a canonical encoding of a known record, or a field breaks a structural rule."""
    TOO_LARGE = "TOO_LARGE"
    """Encoded size above its limit: a tx above ``max_tx_bytes`` (or too big for any
    block), a block above ``MAX_BLOCK_BYTES``. Too many inputs or outputs is
    ``MALFORMED`` (the record does not decode), too many txs ``TOO_MANY_TXS``."""
    UNKNOWN_KIND = "UNKNOWN_KIND"
    """The envelope names a tx kind this version does not know."""
    BAD_SIGNATURE = "BAD_SIGNATURE"
    """The sender's ed25519 signature does not verify."""
    BAD_RANGE_PROOF = "BAD_RANGE_PROOF"
    """The aggregated range proof over the outputs does not verify."""
    UNBALANCED = "UNBALANCED"
    """Σ inputs − Σ outputs is not a proven multiple of H (the excess proof fails)."""
    BAD_COMMITMENT = "BAD_COMMITMENT"
    """A commitment or key is not a valid Ristretto255 point."""
    BAD_PROOF_OF_POSSESSION = "BAD_PROOF_OF_POSSESSION"
    """A ``register_account`` lacks the account key's own signature over (registrar,
    account key, memo key) on this chain: the account did not consent to this
    registration with this memo key. Or a ``register_member`` lacks the new member
    key's signature over (member key, memo key, name), or names a key nobody can
    sign for (not a prime-order ed25519 point, e.g. all zero)."""
    BAD_MEMO_KEY = "BAD_MEMO_KEY"
    """An X25519 memo key (account, member or auditor) is a small-order point, to
    which no memo can be sealed (``ledger.memo_key``)."""

    # --- stateful: the bytes are fine but the state says no ------------------------
    UNKNOWN_INPUT = "UNKNOWN_INPUT"
    """An input names an output that never existed."""
    DOUBLE_SPEND = "DOUBLE_SPEND"
    """An input names an output that is already spent (in state or earlier in the block)."""
    NOT_OWNER = "NOT_OWNER"
    """An input belongs to another account than the signer."""
    WRONG_ASSET = "WRONG_ASSET"
    """An input holds another asset than the transfer declares."""
    UNREGISTERED = "UNREGISTERED"
    """The signer or an output owner is not a registered account."""
    NOT_MEMBER = "NOT_MEMBER"
    """The signer (or an approver, or the bank a ``remove_member`` names) must be a
    member bank and is not."""
    NOT_ISSUER = "NOT_ISSUER"
    """The signer has no issuing rights for the asset."""
    UNKNOWN_ASSET = "UNKNOWN_ASSET"
    """The asset id is not in the state."""
    ALREADY_REGISTERED = "ALREADY_REGISTERED"
    """The account, member or asset already exists."""
    DUPLICATE_TX = "DUPLICATE_TX"
    """A tx with the same id is already committed or earlier in the block."""
    REPLAYED = "REPLAYED"
    """The nonce is not above the signer's last used nonce."""
    SUPPLY_OVERFLOW = "SUPPLY_OVERFLOW"
    """Issuing would push the asset's public supply above 2^64 − 1."""
    NOT_AUTHORIZED = "NOT_AUTHORIZED"
    """A governance tx lacks approvals from a quorum of member banks."""
    TOO_FEW_MEMBERS = "TOO_FEW_MEMBERS"
    """A ``remove_member`` would leave fewer than ``ledger.rules.MIN_MEMBERS`` member banks."""
    NONCE_TOO_FAR = "NONCE_TOO_FAR"
    """The nonce is more than ``ledger.rules.MAX_NONCE_STEP`` above the signer's last
    used nonce: a bounded step keeps any key from jumping to 2^64 − 1 and locking
    itself out of every kind that carries a nonce."""
    UNKNOWN_LOAN = "UNKNOWN_LOAN"
    """A repay, accrue or close names a loan id that is not in the state."""
    LOAN_CLOSED = "LOAN_CLOSED"
    """A repay, accrue or close of a loan that is already closed."""
    NOT_LOAN_PARTY = "NOT_LOAN_PARTY"
    """The signer is not the loan's borrower (repay, close) or lender (accrue)."""
    BAD_CONSENT = "BAD_CONSENT"
    """A ``loan_originate`` whose borrower consent signature does not verify over
    (lender, borrower, asset, terms, disbursement commitment, consent nonce)."""
    ACCRUAL_NOT_DUE = "ACCRUAL_NOT_DUE"
    """A ``loan_accrue`` for a period that is not the next one, or has not ended."""
    LOAN_NOT_SETTLED = "LOAN_NOT_SETTLED"
    """A ``loan_close`` whose proof that the outstanding commitment opens to zero fails."""

    # --- block level --------------------------------------------------------------
    BAD_HEIGHT = "BAD_HEIGHT"
    BAD_PREV_HASH = "BAD_PREV_HASH"
    BAD_TX_ROOT = "BAD_TX_ROOT"
    BAD_STATE_ROOT = "BAD_STATE_ROOT"
    BAD_PROPOSER = "BAD_PROPOSER"
    BAD_TIMESTAMP = "BAD_TIMESTAMP"
    TOO_MANY_TXS = "TOO_MANY_TXS"
    """A block above ``max_block_txs`` txs; in ``execute_batch``, a valid tx of a batch
    whose block already holds that many."""
    BLOCK_FULL = "BLOCK_FULL"
    """``execute_batch``: a valid tx that would push its block above ``MAX_BLOCK_BYTES``.
    Consensus's batch limits (``node.config``) keep this from happening to honest
    batches; it keeps ``execute_batch`` total when a batch breaks them."""


class TxRejected(Exception):  # noqa: N818 (the protocol name: "tx rejected")
    """A tx (or block) failed a check. ``reason`` is stable; ``detail`` is for humans.

    ``index`` is the position of the offending tx in a block, when known.
    """

    def __init__(self, reason: Reason, detail: str = "", *, index: int | None = None) -> None:
        where = f" (tx #{index})" if index is not None else ""
        super().__init__(f"{reason.value}{where}: {detail}" if detail else f"{reason.value}{where}")
        self.reason = reason
        self.detail = detail
        self.index = index

    def at(self, index: int) -> TxRejected:
        """The same rejection, located at tx ``index`` of a block."""
        return TxRejected(self.reason, self.detail, index=index)


class BlockRejected(TxRejected):
    """A block failed a check; ``index`` names the first bad tx for tx-level reasons."""
