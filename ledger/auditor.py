"""Auditor (regulator) helper: open every audit memo, check it, total per asset and per owner.

Two independent checks, per asset:

* **commitments** (needs no key; anyone can run it against the state):
  ``Σ unspent commitments + excess_sum == issued_total · G`` (see
  ``ledger.rules``: every issue and transfer adds its excess ``x·H`` to
  ``excess_sum``, and issue amounts are public). It holds iff no tx created or
  destroyed value, given that every excess proof showed a pure ``H`` multiple;
* **openings** (needs the auditor's memo key): every output's audit memo must
  open its commitment (``commit(v, r) == C``, checked by ``privacy.memo``) with
  the output's asset, and the opened values of the unspent outputs must add up
  to ``issued_total``;
* **owner memos** (same key): the audit memo discloses the owner memo's
  ephemeral key (``ledger.memo_binding``), with which the auditor checks that
  the owner memo opens, for the owner's registered memo key, to the same value,
  blinding and asset. Only then is the output credited to its owner in
  ``per_owner``: an owner memo sealed to the wrong key, or carrying another
  opening, would leave the owner unable to open, so spend, the output.

Every output whose audit memo is missing, undecryptable, malformed, for another
asset or does not open its commitment, or whose owner memo cannot be checked
(``OWNER_MEMO_UNBOUND``) or does not match (``OWNER_MEMO_MISMATCH``), is
reported as a ``Mismatch`` with its tx id: the ledger cannot reject such a tx
(memos are opaque to validators), so the auditor finds them after the fact.
What stays undetected is in ``docs/ledger.md`` ("What the auditor detects").

The auditor key may have been rotated (``set_auditor_key``): pass every memo
private key the auditor has held; each memo is tried with each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ledger.block import Block
from ledger.memo_binding import owner_memo_problem
from ledger.rules import get_account, get_asset, iter_unspent
from ledger.state import NS_ASSET, StateReader, state_key
from ledger.tx import confidential_bodies, output_id_of, split_output_id
from privacy import group
from privacy.memo import MemoError, Opening, open_memo


@dataclass(frozen=True, slots=True)
class Mismatch:
    tx_id: bytes
    output_id: bytes
    reason: str
    """UNDECRYPTABLE, MALFORMED, OPENING_MISMATCH, WRONG_ASSET, NO_OPENING,
    OWNER_MEMO_UNBOUND or OWNER_MEMO_MISMATCH."""


@dataclass(frozen=True, slots=True)
class AssetAudit:
    asset_id: bytes
    issued_total: int
    unspent_count: int
    unspent_value: int
    """Σ opened values of the unspent outputs (those with a good opening)."""
    commitments_balance: bool
    """Σ unspent commitments + excess_sum == issued_total·G."""

    @property
    def values_balance(self) -> bool:
        return self.unspent_value == self.issued_total


@dataclass(frozen=True, slots=True)
class AuditReport:
    assets: dict[bytes, AssetAudit]
    per_owner: dict[tuple[bytes, bytes], int]
    """(owner, asset) -> Σ opened values of its unspent outputs whose owner memo the
    owner can open (an output with a lying owner memo is counted in the asset's
    ``unspent_value``, the value exists, but credited to nobody)."""
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches and all(
            a.commitments_balance and a.values_balance for a in self.assets.values()
        )


@dataclass(slots=True)
class Auditor:
    """Feed it every committed block (``scan``), then ask for a ``report`` against the state."""

    memo_private_keys: Sequence[bytes] = field(repr=False)
    openings: dict[bytes, Opening] = field(default_factory=dict, repr=False)
    """output id -> the audit memo's opening (with the owner's note once checked)."""
    created_by: dict[bytes, bytes] = field(default_factory=dict)
    """output id -> tx id, for every output seen."""
    bad: dict[bytes, Mismatch] = field(default_factory=dict)
    owner_memos: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict, repr=False)
    """output id -> (owner, owner memo), checked against the state in ``report``."""
    owner_ok: set[bytes] = field(default_factory=set)
    """Output ids whose owner memo was checked and opens for its owner."""

    def _open(self, memo: bytes, commitment: bytes) -> Opening | str:
        reason = "UNDECRYPTABLE"
        for key in self.memo_private_keys:
            try:
                return open_memo(memo, key, commitment)
            except MemoError as err:
                if err.decrypted or err.reason == "MALFORMED":
                    return err.reason
        return reason

    def scan(self, block: Block, chain_id: bytes) -> None:
        for tx_id, body in confidential_bodies(block.txs, chain_id):
            for index, output in enumerate(body.outputs):
                output_id = output_id_of(tx_id, index)
                self.created_by[output_id] = tx_id
                opened = self._open(output.audit_memo, output.commitment)
                if isinstance(opened, str):
                    self.bad[output_id] = Mismatch(tx_id, output_id, opened)
                elif opened.asset != body.asset:
                    self.bad[output_id] = Mismatch(tx_id, output_id, "WRONG_ASSET")
                else:
                    self.openings[output_id] = opened
                    self.owner_memos[output_id] = (output.owner, output.owner_memo)

    def check_owner_memos(self, memo_key_of: Callable[[bytes], bytes | None]) -> None:
        """Check each scanned owner memo once, against its owner's registered memo key:
        ``memo_key_of(owner)``, ``None`` when the owner has no account. A client without
        the state passes a lookup over the node's API (``client.audit``)."""
        for output_id, (owner, memo) in self.owner_memos.items():
            memo_key = memo_key_of(owner)
            if memo_key is None:
                reason = "OWNER_MEMO_MISMATCH"  # no account: nobody can open it as owner
                owned = None
            else:
                reason, owned = owner_memo_problem(memo, memo_key, self.openings[output_id])
            if owned is None:
                self.bad[output_id] = Mismatch(self.created_by[output_id], output_id, reason)
            else:
                self.openings[output_id] = owned
                self.owner_ok.add(output_id)
        self.owner_memos.clear()

    def _check_owner_memos(self, state: StateReader) -> None:
        """Against the state (accounts are never changed or removed, so any later state
        will do)."""

        def memo_key_of(owner: bytes) -> bytes | None:
            account = get_account(state, owner)
            return None if account is None else account.memo_public_key

        self.check_owner_memos(memo_key_of)

    def scan_all(self, blocks: Iterable[Block], chain_id: bytes) -> None:
        for block in blocks:
            self.scan(block, chain_id)

    def report(self, state: StateReader) -> AuditReport:
        """Totals over the unspent outputs in ``state``; every bad or missing opening listed."""
        commitment_sums: dict[bytes, bytes] = {}
        counts: dict[bytes, int] = {}
        values: dict[bytes, int] = {}
        per_owner: dict[tuple[bytes, bytes], int] = {}
        mismatches: list[Mismatch] = []
        self._check_owner_memos(state)
        for output_id, record in iter_unspent(state):
            asset = record.asset
            commitment_sums[asset] = group.add(
                commitment_sums.get(asset, group.IDENTITY), record.commitment
            )
            counts[asset] = counts.get(asset, 0) + 1
            opening = self.openings.get(output_id)
            if opening is None:
                mismatch = self.bad.get(output_id)
                if mismatch is None:
                    mismatch = Mismatch(split_output_id(output_id)[0], output_id, "NO_OPENING")
                mismatches.append(mismatch)
                continue
            values[asset] = values.get(asset, 0) + opening.value
            if output_id not in self.owner_ok:
                mismatches.append(self.bad[output_id])  # the owner cannot open it
                continue
            key = (record.owner, asset)
            per_owner[key] = per_owner.get(key, 0) + opening.value
        # Spent outputs with bad memos are reported too: the tx that made them is suspect.
        unspent_ids = {m.output_id for m in mismatches}
        mismatches.extend(m for oid, m in self.bad.items() if oid not in unspent_ids)
        assets: dict[bytes, AssetAudit] = {}
        for asset_id in sorted(set(commitment_sums) | _asset_ids(state)):
            record_a = get_asset(state, asset_id)
            issued = record_a.issued_total if record_a is not None else 0
            excess_sum = record_a.excess_sum if record_a is not None else group.IDENTITY
            lhs = group.add(commitment_sums.get(asset_id, group.IDENTITY), excess_sum)
            assets[asset_id] = AssetAudit(
                asset_id,
                issued,
                counts.get(asset_id, 0),
                values.get(asset_id, 0),
                lhs == group.mul_base(issued),
            )
        ordered = sorted(mismatches, key=lambda m: (m.tx_id, m.output_id))
        return AuditReport(assets, per_owner, tuple(ordered))


def _asset_ids(state: StateReader) -> set[bytes]:
    prefix = state_key(NS_ASSET, b"")
    return {key[len(prefix) :] for key, _ in state.iter_state(prefix)}


def audit(
    blocks: Iterable[Block], state: StateReader, chain_id: bytes, memo_private_keys: Sequence[bytes]
) -> AuditReport:
    """Scan ``blocks`` (every committed block) and report against ``state``."""
    auditor = Auditor(memo_private_keys)
    auditor.scan_all(blocks, chain_id)
    return auditor.report(state)
