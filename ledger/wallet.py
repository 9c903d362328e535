"""Wallet helpers (used by ``client/``): find my outputs, track my balance, pay with change.

A wallet knows one account: its ed25519 identity (owner key, signs transfers)
and its X25519 memo key (opens the owner memos of its outputs). It learns what
it owns by scanning blocks: an output is mine when its owner is my key *and*
its owner memo opens, with my memo key, to an opening of its commitment
(``privacy.memo.try_open_memo`` checks ``commit(v, r) == C``). An output that
names me but whose memo does not decrypt, or decrypts to a wrong opening, is
reported in ``ScanResult.unreadable``: I cannot spend it without its opening.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ledger.block import Block
from ledger.build import BuiltTx, OutputPlan, build_transfer, prove_account_possession
from ledger.identity import SigningIdentity
from ledger.tx import MAX_INPUTS, IssueBody, confidential_bodies, output_id_of
from privacy.memo import MemoError, Opening, memo_public_key, try_open_memo


@dataclass(frozen=True, slots=True)
class OwnedOutput:
    output_id: bytes
    tx_id: bytes
    commitment: bytes
    opening: Opening = field(repr=False)
    """The value and blinding: secrets, kept out of the repr."""

    @property
    def asset(self) -> bytes:
        return self.opening.asset

    @property
    def value(self) -> int:
        return self.opening.value


@dataclass(frozen=True, slots=True)
class ScanResult:
    received: tuple[OwnedOutput, ...]
    spent: tuple[bytes, ...]
    """Ids of every output spent by the block (mine or not)."""
    unreadable: tuple[tuple[bytes, str], ...]
    """(output id, memo error reason) of outputs owned by me that I cannot open."""


def scan_block(block: Block, chain_id: bytes, owner: bytes, memo_private_key: bytes) -> ScanResult:
    """Outputs of ``block`` owned by ``owner`` whose owner memo opens with my key."""
    received: list[OwnedOutput] = []
    spent: list[bytes] = []
    unreadable: list[tuple[bytes, str]] = []
    for tx_id, body in confidential_bodies(block.txs, chain_id):
        if not isinstance(body, IssueBody):
            spent.extend(body.inputs)
        for index, output in enumerate(body.outputs):
            if output.owner != owner:
                continue
            output_id = output_id_of(tx_id, index)
            try:
                opening = try_open_memo(output.owner_memo, memo_private_key, output.commitment)
            except MemoError as err:
                unreadable.append((output_id, err.reason))
                continue
            if opening is None:
                unreadable.append((output_id, "UNDECRYPTABLE"))
            elif opening.asset != body.asset:
                unreadable.append((output_id, "WRONG_ASSET"))
            else:
                received.append(OwnedOutput(output_id, tx_id, output.commitment, opening))
    return ScanResult(tuple(received), tuple(spent), tuple(unreadable))


def balances(outputs: Iterable[OwnedOutput]) -> dict[bytes, int]:
    """Total value per asset id."""
    totals: dict[bytes, int] = {}
    for output in outputs:
        totals[output.asset] = totals.get(output.asset, 0) + output.value
    return totals


def select_inputs(outputs: Sequence[OwnedOutput], asset: bytes, amount: int) -> list[OwnedOutput]:
    """Largest-first selection of outputs of ``asset`` covering ``amount``.

    At most ``MAX_INPUTS`` (what one transfer may spend): if the largest ones do not
    cover ``amount``, raise ``ValueError`` rather than build a tx the chain refuses.
    """
    candidates = sorted(
        (o for o in outputs if o.asset == asset), key=lambda o: (-o.value, o.output_id)
    )
    chosen: list[OwnedOutput] = []
    total = 0
    for output in candidates:
        if total >= amount and chosen:
            break
        chosen.append(output)
        total += output.value
    if total < amount or not chosen:
        raise ValueError(f"insufficient funds: have {total}, need {amount}")
    if len(chosen) > MAX_INPUTS:
        raise ValueError(
            f"{amount} needs {len(chosen)} inputs, a transfer spends at most {MAX_INPUTS}: "
            "consolidate outputs first (pay to yourself)"
        )
    return chosen


@dataclass(slots=True)
class Wallet:
    """One account's view of its unspent outputs, fed block by block."""

    identity: SigningIdentity
    memo_private_key: bytes = field(repr=False)
    unspent: dict[bytes, OwnedOutput] = field(default_factory=dict)
    unreadable: list[tuple[bytes, str]] = field(default_factory=list)

    @property
    def public_key(self) -> bytes:
        return self.identity.public_key

    @property
    def memo_public_key(self) -> bytes:
        return memo_public_key(self.memo_private_key)

    def proof_of_possession(self, chain_id: bytes, registrar: bytes) -> bytes:
        """My consent to be registered by the member ``registrar`` with my memo key:
        hand it to the bank, which puts it in its ``register_account`` tx."""
        return prove_account_possession(
            self.identity, chain_id, registrar=registrar, memo_public_key=self.memo_public_key
        )

    def scan(self, block: Block, chain_id: bytes) -> ScanResult:
        result = scan_block(block, chain_id, self.public_key, self.memo_private_key)
        for output in result.received:
            self.unspent[output.output_id] = output
        for output_id in result.spent:
            self.unspent.pop(output_id, None)
        self.unreadable.extend(result.unreadable)
        return result

    def balances(self) -> dict[bytes, int]:
        return balances(self.unspent.values())

    def pay(
        self,
        chain_id: bytes,
        asset: bytes,
        *,
        recipient: bytes,
        recipient_memo_key: bytes,
        amount: int,
        auditor_memo_key: bytes,
        note: bytes = b"",
    ) -> BuiltTx:
        """A transfer of ``amount`` to ``recipient`` with change back to me.

        The spent outputs stay in ``unspent`` until a scanned block spends them.
        """
        if amount <= 0:
            raise ValueError("pay a positive amount")
        chosen = select_inputs(list(self.unspent.values()), asset, amount)
        change = sum(o.value for o in chosen) - amount
        plans = [OutputPlan(recipient, recipient_memo_key, amount, note)]
        plans.append(OutputPlan(self.public_key, self.memo_public_key, change))
        return build_transfer(
            self.identity,
            self.memo_public_key,
            chain_id,
            asset=asset,
            inputs=[(o.output_id, o.opening) for o in chosen],
            plans=plans,
            auditor_memo_key=auditor_memo_key,
        )
