"""The regulator's audit over a node's API: what ``veil audit`` and the devnet demo show.

The client has no state, only blocks and ``/v1/accounts``: it opens every audit
memo of every block with the regulator's memo keys (``ledger.auditor.Auditor``),
checks every owner memo against its owner's registered memo key read from the
node, and totals the opened value of the unspent outputs per asset against the
asset's public issued total. A memo that does not open its commitment (audit or
owner memo) is a mismatch, reported with the tx id and the tx's signer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from client.sdk import Client, VeilApiError
from ledger.auditor import Auditor
from ledger.block import decode_block
from ledger.reasons import TxRejected
from ledger.tx import IssueBody, confidential_bodies, signer_of


@dataclass(frozen=True, slots=True)
class AssetTotal:
    symbol: str
    issued_total: int
    unspent_total: int
    """Σ opened values of the unspent outputs whose audit memo opens."""
    unspent_outputs: int

    @property
    def balanced(self) -> bool:
        return self.unspent_total == self.issued_total


@dataclass(frozen=True, slots=True)
class MemoMismatch:
    tx_id: bytes
    output_id: bytes
    reason: str
    """``ledger.auditor.Mismatch.reason``: UNDECRYPTABLE, OPENING_MISMATCH, WRONG_ASSET,
    MALFORMED, OWNER_MEMO_UNBOUND or OWNER_MEMO_MISMATCH."""
    signer: bytes


@dataclass(frozen=True, slots=True)
class ChainAudit:
    height: int
    assets: tuple[AssetTotal, ...]
    mismatches: tuple[MemoMismatch, ...]


class _MemoKeys:
    """Owner -> registered memo key, read once per owner from ``/v1/accounts``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._known: dict[bytes, bytes | None] = {}

    def __call__(self, owner: bytes) -> bytes | None:
        if owner not in self._known:
            try:
                self._known[owner] = self._client.account(owner).memo_public_key
            except VeilApiError as exc:
                if exc.code != "ACCOUNT_NOT_FOUND":
                    raise
                self._known[owner] = None
        return self._known[owner]


def audit_chain(client: Client, memo_private_keys: Sequence[bytes]) -> ChainAudit:
    """Audit every block up to the node's current height (see the module docstring)."""
    chain = client.chain()
    auditor = Auditor(memo_private_keys)
    spent: set[bytes] = set()
    signers: dict[bytes, bytes] = {}
    for height in range(1, chain.height + 1):
        try:
            block = decode_block(client.block_raw(height))
        except TxRejected as exc:
            raise VeilApiError("BAD_RESPONSE", f"block {height} does not decode: {exc}") from None
        auditor.scan(block, chain.chain_id)
        for tx_id, body in confidential_bodies(block.txs, chain.chain_id):
            signers[tx_id] = signer_of(body)
            if not isinstance(body, IssueBody):  # transfers and loans spend inputs
                spent.update(body.inputs)
    auditor.check_owner_memos(_MemoKeys(client))
    totals = []
    for asset in chain.assets:
        unspent = [
            opening
            for output_id, opening in auditor.openings.items()
            if output_id not in spent and opening.asset == asset.id
        ]
        totals.append(
            AssetTotal(
                asset.symbol, asset.issued_total, sum(o.value for o in unspent), len(unspent)
            )
        )
    mismatches = tuple(
        MemoMismatch(m.tx_id, m.output_id, m.reason, signers.get(m.tx_id, b""))
        for m in sorted(auditor.bad.values(), key=lambda m: m.output_id)
    )
    return ChainAudit(chain.height, tuple(totals), mismatches)
