"""The rules of each tx kind: what the state holds, stateless checks, stateful checks and writes.

State layout (``ledger.state``: one flat map of ``namespace:key -> canonical value``)::

    out:<output id>      OutputRecord(owner, asset, commitment)          an unspent output
                         or SpentRecord(spent_by)                        once it is spent
    acct:<public key>    AccountRecord(memo_public_key, registered_by)   accounts (banks too)
    member:<public key>  MemberRecord(name, memo_public_key)             member banks (deleted
                                                                         on removal)
    asset:<asset id>     AssetRecord(symbol, issuer, issued_total, excess_sum)
    nonce:<public key>   last nonce used by that signer (u64)
    attest:<tx id>       AttestRecord(member, label, digest)
    loan:<loan id>       LoanRecord (ledger.loans): terms, commitments, status
    borrower:<pk||id>    the borrower → loans index (origination height)
    meta:auditor         the auditor's X25519 memo key (32 bytes)
    meta:clock           (height, timestamp_ms) of the last block

Memos are not copied into the state: they stay in the block body (committed by
the tx root) and ``out:`` keeps only what the rules need, which keeps the state
and the bytes on disk per transfer small.

A spent output is overwritten in place by a ``SpentRecord`` (the spending tx
id), so that spending it again is ``DOUBLE_SPEND`` rather than
``UNKNOWN_INPUT``: a stable code must not depend on whether the output was
spent in this block or an earlier one. Overwriting in place (rather than a
delete plus a tombstone under another key) changes one state-tree leaf per
input instead of two, which is most of what the bytes on disk per transfer
spend on the state. The two records are told apart by their field count (a
one-field array against a four-field one).

**Supply invariant.** Each balance-carrying tx has an excess point
``E = (Σ inputs or amount·G) − Σ outputs`` which its excess proof shows to be
``x·H``. The asset record accumulates ``excess_sum = Σ E`` and the public
``issued_total``. Then, for every asset, at every height::

    Σ unspent commitments + excess_sum == issued_total · G

and since every ``E`` has no ``G`` component, the unspent values add up to
exactly ``issued_total``. ``ledger.auditor`` checks both.

Stateless checks happen in ``check_stateless`` (structure, sizes, points,
signatures, the issue's balance); range proofs are *collected* there
(``range_statement``) and verified by the caller, one batch per block.
Stateful checks and writes happen in ``apply_tx``.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass
from typing import Final

from ledger.codec import U64, Bytes32, DecodeError, Record, decode_value, encode_value
from ledger.genesis import Genesis
from ledger.identity import ed25519_key_problem, verify_signature
from ledger.memo_key import memo_key_problem
from ledger.reasons import Reason, TxRejected
from ledger.state import (
    NS_ACCOUNT,
    NS_ASSET,
    NS_ATTEST,
    NS_MEMBER,
    NS_META,
    NS_NONCE,
    NS_OUTPUT,
    StateDelta,
    StateReader,
    StateView,
    state_key,
)
from ledger.tx import (
    EXCESS_PROOF_BYTES,
    LOAN_BODIES,
    MAX_OUTPUTS,
    RANGE_BITS,
    TAG_APPROVE,
    TAG_REGISTER_ACCOUNT_POP,
    TAG_REGISTER_MEMBER_POP,
    AttestBody,
    Body,
    DecodedTx,
    IssueBody,
    LoanCloseBody,
    LoanOriginateBody,
    LoanRepayBody,
    Name,
    RegisterAccountBody,
    RegisterMemberBody,
    RemoveMemberBody,
    SetAuditorKeyBody,
    TransferBody,
    TxOutput,
    member_pop_payload,
    output_id_of,
    pop_payload,
)
from ledger.tx import Approvals as ApprovalsRecord
from ledger.tx import Label as LabelType
from privacy import group
from privacy.memo import MAX_MEMO_BYTES as MEMO_MAX
from privacy.memo import MIN_MEMO_BYTES as MEMO_MIN
from privacy.rangeproof import RangeStatement
from privacy.sigma import verify_excess

META_AUDITOR: Final = b"auditor"
META_CLOCK: Final = b"clock"
U64_MAX: Final = (1 << 64) - 1
MIN_MEMBERS: Final = 2
"""A removal may not leave fewer member banks: one bank alone would govern the chain,
and a removal must always be approved by at least two banks besides the removed one
(see ``removal_quorum``)."""
MAX_NONCE_STEP: Final = 1 << 16
"""A nonce is in ``last + 1 .. last + MAX_NONCE_STEP``. Gaps let a bank pre-sign and
drop txs; the bound means reaching 2^64 − 1, after which the key could sign no
kind with a nonce, takes at least 2^48 committed txs of that key."""


# --- state records ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputRecord(Record):
    """An unspent output; its creating tx is the first 32 bytes of its id."""

    owner: Bytes32
    asset: Bytes32
    commitment: Bytes32


@dataclass(frozen=True, slots=True)
class SpentRecord(Record):
    spent_by: Bytes32


@dataclass(frozen=True, slots=True)
class AccountRecord(Record):
    memo_public_key: Bytes32
    registered_by: Bytes32


@dataclass(frozen=True, slots=True)
class MemberRecord(Record):
    name: Name
    memo_public_key: Bytes32


@dataclass(frozen=True, slots=True)
class AssetRecord(Record):
    symbol: Name
    issuer: Bytes32
    issued_total: U64
    excess_sum: Bytes32
    """Σ of the excess points of every issue and transfer of this asset."""


@dataclass(frozen=True, slots=True)
class AttestRecord(Record):
    member: Bytes32
    label: LabelType
    digest: Bytes32


@dataclass(frozen=True, slots=True)
class ClockRecord(Record):
    height: U64
    timestamp_ms: U64


R = typing.TypeVar("R", bound=Record)


def _read(state: StateReader, cls: type[R], namespace: bytes, key: bytes) -> R | None:
    raw = state.get_state(state_key(namespace, key))
    if raw is None:
        return None
    return cls.decode(raw)


def _decode_output_slot(raw: bytes) -> OutputRecord | SpentRecord:
    value = decode_value(raw)
    if isinstance(value, tuple) and len(value) == 1:  # OutputRecord has 3 fields
        return SpentRecord.from_value(value)
    return OutputRecord.from_value(value)


def output_slot(state: StateReader, output_id: bytes) -> OutputRecord | SpentRecord | None:
    """The unspent output, the record of its spending, or ``None`` if it never existed."""
    raw = state.get_state(state_key(NS_OUTPUT, output_id))
    return None if raw is None else _decode_output_slot(raw)


def get_output(state: StateReader, output_id: bytes) -> OutputRecord | None:
    """The output if it exists and is unspent."""
    slot = output_slot(state, output_id)
    return slot if isinstance(slot, OutputRecord) else None


def spent_by(state: StateReader, output_id: bytes) -> bytes | None:
    """The id of the tx that spent the output, if it is spent."""
    slot = output_slot(state, output_id)
    return slot.spent_by if isinstance(slot, SpentRecord) else None


def get_account(state: StateReader, public_key: bytes) -> AccountRecord | None:
    return _read(state, AccountRecord, NS_ACCOUNT, public_key)


def is_registered(state: StateReader, public_key: bytes) -> bool:
    """An account exists (no decoding: accounts are never changed or removed)."""
    return state.get_state(state_key(NS_ACCOUNT, public_key)) is not None


def get_member(state: StateReader, public_key: bytes) -> MemberRecord | None:
    return _read(state, MemberRecord, NS_MEMBER, public_key)


def get_asset(state: StateReader, asset_id: bytes) -> AssetRecord | None:
    return _read(state, AssetRecord, NS_ASSET, asset_id)


def get_clock(state: StateReader) -> ClockRecord | None:
    return _read(state, ClockRecord, NS_META, META_CLOCK)


def get_auditor_key(state: StateReader) -> bytes:
    raw = state.get_state(state_key(NS_META, META_AUDITOR))
    if raw is None:
        raise LookupError("no auditor key in the state (genesis not committed?)")
    return raw


def last_nonce(state: StateReader, signer: bytes) -> int:
    raw = state.get_state(state_key(NS_NONCE, signer))
    if raw is None:
        return 0
    fast = decode_canonical_uint(raw)
    if fast is not None:
        return fast
    value = decode_value(raw)
    if not isinstance(value, int):
        raise DecodeError("TYPE", "nonce value is not an int")
    return value


_UINT_FORMS: Final = {0xCC: (1, 1 << 7), 0xCD: (2, 1 << 8), 0xCE: (4, 1 << 16), 0xCF: (8, 1 << 32)}
"""msgpack's uint8/16/32/64 markers: (payload bytes, the least value that form is canonical
for, since a smaller one has a shorter encoding)."""


def decode_canonical_uint(raw: bytes) -> int | None:
    """``decode_value(raw)`` when ``raw`` is the canonical encoding of an unsigned
    integer, else ``None`` (the caller decodes it the general way). The nonce record
    is read at every admission, execution and rebuild of a tx with a nonce, and the
    general path unpacks, checks and packs the value again to prove it canonical."""
    if type(raw) is not bytes or not raw:
        return None
    marker = raw[0]
    if marker < 0x80:
        return marker if len(raw) == 1 else None
    form = _UINT_FORMS.get(marker)
    if form is None or len(raw) != 1 + form[0]:
        return None
    value = int.from_bytes(raw[1:], "big")
    return value if value >= form[1] else None


def encode_uint(value: int) -> bytes:
    """``encode_value(value)`` for an int in [0, 2^64), packed without the general
    checks (the caller's value is a nonce the rules bounded)."""
    if type(value) is not int or not 0 <= value <= U64_MAX:
        return encode_value(value)
    if value < 0x80:
        return bytes((value,))
    if value < 1 << 8:
        return b"\xcc" + value.to_bytes(1, "big")
    if value < 1 << 16:
        return b"\xcd" + value.to_bytes(2, "big")
    if value < 1 << 32:
        return b"\xce" + value.to_bytes(4, "big")
    return b"\xcf" + value.to_bytes(8, "big")


def members(state: StateReader) -> list[bytes]:
    """Member keys in ascending order."""
    prefix = state_key(NS_MEMBER, b"")
    return [key[len(prefix) :] for key, _ in state.iter_state(prefix)]


def iter_unspent(state: StateReader) -> typing.Iterator[tuple[bytes, OutputRecord]]:
    prefix = state_key(NS_OUTPUT, b"")
    for key, raw in state.iter_state(prefix):
        slot = _decode_output_slot(raw)
        if isinstance(slot, OutputRecord):
            yield key[len(prefix) :], slot


def genesis_delta(genesis: Genesis) -> StateDelta:
    """The state at height 0: members (also accounts), accounts, assets, auditor key, clock."""
    delta = StateDelta()
    for member in genesis.members:
        delta.put(
            state_key(NS_MEMBER, member.public_key),
            MemberRecord(member.name, member.memo_public_key).encode(),
        )
        delta.put(
            state_key(NS_ACCOUNT, member.public_key),
            AccountRecord(member.memo_public_key, member.public_key).encode(),
        )
    for account in genesis.accounts:
        delta.put(
            state_key(NS_ACCOUNT, account.public_key),
            AccountRecord(account.memo_public_key, account.registered_by).encode(),
        )
    for asset in genesis.assets:
        delta.put(
            state_key(NS_ASSET, asset.asset_id),
            AssetRecord(asset.symbol, asset.issuer, 0, group.IDENTITY).encode(),
        )
    delta.put(state_key(NS_META, META_AUDITOR), genesis.auditor_memo_public_key)
    delta.put(state_key(NS_META, META_CLOCK), ClockRecord(0, genesis.genesis_time_ms).encode())
    return delta


# --- stateless ----------------------------------------------------------------------


def governance_quorum(member_count: int) -> int:
    """More than two thirds of the members: ⌊2n/3⌋ + 1."""
    return (2 * member_count) // 3 + 1


def removal_quorum(member_count: int) -> int:
    """Approvals a removal needs: more than two thirds of the OTHER n − 1 members.

    The removed member has no say: a key nobody can sign for (or a bank gone
    rogue) would otherwise block its own removal whenever the quorum needs it,
    e.g. always with three members. Afterwards every quorum is counted over the
    n − 1 members that remain.
    """
    return governance_quorum(member_count - 1)


def check_outputs(outputs: tuple[TxOutput, ...]) -> None:
    count = len(outputs)
    if count == 0 or count > MAX_OUTPUTS or count & (count - 1):
        raise TxRejected(
            Reason.MALFORMED, f"{count} outputs: must be a power of two in 1..{MAX_OUTPUTS}"
        )
    for i, output in enumerate(outputs):
        if not group.is_valid_point(output.commitment):
            raise TxRejected(Reason.BAD_COMMITMENT, f"output {i}: commitment is not a point")
        for name, memo in (("owner", output.owner_memo), ("audit", output.audit_memo)):
            if not MEMO_MIN <= len(memo) <= MEMO_MAX:
                raise TxRejected(Reason.MALFORMED, f"output {i}: {name} memo of {len(memo)} bytes")


def _check_memo_key(key: bytes, what: str) -> None:
    problem = memo_key_problem(key)
    if problem is not None:
        raise TxRejected(Reason.BAD_MEMO_KEY, f"{what}: {problem}")


def _memo_key_of(body: Body) -> tuple[bytes, str] | None:
    """The X25519 memo key a tx would put into the state, and what it is for."""
    if isinstance(body, (RegisterAccountBody, RegisterMemberBody)):
        return body.memo_public_key, "memo key"
    if isinstance(body, SetAuditorKeyBody):
        return body.auditor_memo_public_key, "auditor memo key"
    return None


def check_proof_of_possession(body: RegisterAccountBody, chain_id: bytes) -> bool:
    """The account key signed (registrar, account key, memo key) for this chain."""
    payload = pop_payload(body.registrar, body.account_key, body.memo_public_key)
    return verify_signature(
        body.account_key, TAG_REGISTER_ACCOUNT_POP, chain_id, payload, body.proof_of_possession
    )


def check_stateless(
    dtx: DecodedTx, chain_id: bytes, *, max_tx_bytes: int, signature_ok: bool | None = None
) -> None:
    """Checks that need only the tx: size, structure, points, memo keys, signatures
    (the sender's, a registration's proof of possession, approvals), issue balance.
    ``signature_ok``: the sender signature's verdict, when the caller checked it
    with others in a batch (``node.mempool.Mempool.check_ahead``); it decides
    nothing else, so the reason a tx is refused stays the same.

    Does not verify the range proof (see ``range_statement``): blocks verify them
    in one batch.
    """
    if dtx.size_bytes > max_tx_bytes:
        raise TxRejected(Reason.TOO_LARGE, f"{dtx.size_bytes} bytes > {max_tx_bytes}")
    body = dtx.body
    tx = dtx.tx
    if isinstance(body, (IssueBody, TransferBody, LoanOriginateBody, LoanRepayBody)):
        check_outputs(body.outputs)
        if len(tx.witness) != EXCESS_PROOF_BYTES:
            raise TxRejected(Reason.MALFORMED, f"excess proof of {len(tx.witness)} bytes")
    elif isinstance(body, (RegisterMemberBody, SetAuditorKeyBody, RemoveMemberBody)):
        pass  # approvals are decoded and checked below
    elif isinstance(body, LoanCloseBody):
        if len(tx.witness) != EXCESS_PROOF_BYTES:
            raise TxRejected(Reason.MALFORMED, f"zero-balance proof of {len(tx.witness)} bytes")
    elif tx.witness:
        raise TxRejected(Reason.MALFORMED, "this kind carries no witness")
    if isinstance(body, (TransferBody, LoanOriginateBody, LoanRepayBody)):
        if not body.inputs:
            raise TxRejected(Reason.MALFORMED, "a transfer spends at least one input")
        if len(set(body.inputs)) != len(body.inputs):
            raise TxRejected(Reason.DOUBLE_SPEND, "the same input is listed twice")
    if isinstance(body, IssueBody) and body.amount == 0:
        raise TxRejected(Reason.MALFORMED, "an issue mints a positive amount")
    if isinstance(body, RegisterMemberBody):
        ids = [a.asset_id for a in body.assets]
        if len(set(ids)) != len(ids):
            raise TxRejected(Reason.MALFORMED, "an asset id is listed twice")
    memo_key = _memo_key_of(body)
    if memo_key is not None:
        _check_memo_key(*memo_key)
    if isinstance(body, LOAN_BODIES):
        from ledger.loans import check_loan_structure  # noqa: PLC0415 (loans import this module)

        check_loan_structure(body)
    if signature_ok is None:
        signature_ok = verify_signature(dtx.signer, tx.kind, chain_id, tx.body, tx.signature)
    if not signature_ok:
        raise TxRejected(Reason.BAD_SIGNATURE, "sender signature")
    if isinstance(body, LoanOriginateBody):
        from ledger.loans import check_consent  # noqa: PLC0415 (loans import this module)

        check_consent(body, chain_id)
    if isinstance(body, RegisterAccountBody) and not check_proof_of_possession(body, chain_id):
        raise TxRejected(
            Reason.BAD_PROOF_OF_POSSESSION,
            "the account key did not sign (registrar, account key, memo key) for this chain",
        )
    if isinstance(body, RegisterMemberBody):
        _check_member_possession(body, chain_id)
    if isinstance(body, (RegisterMemberBody, SetAuditorKeyBody, RemoveMemberBody)):
        approvals = decode_approvals(dtx).approvals
        for approval in approvals:
            if not verify_signature(
                approval.member, TAG_APPROVE, chain_id, dtx.tx_id, approval.signature
            ):
                raise TxRejected(Reason.BAD_SIGNATURE, "approval signature")
        if isinstance(body, RemoveMemberBody) and body.member_key in {
            body.proposer,
            *(a.member for a in approvals),
        }:
            raise TxRejected(
                Reason.MALFORMED, "the member being removed neither proposes nor approves it"
            )
    if isinstance(body, IssueBody):
        excess = issue_excess(body)
        if excess == group.IDENTITY or not verify_excess(excess, dtx.tx_id, tx.witness):
            raise TxRejected(Reason.UNBALANCED, "amount·G − Σ outputs is not a proven x·H")


def check_member_possession(body: RegisterMemberBody, chain_id: bytes) -> bool:
    """The new member key signed (member key, memo key, name) for this chain."""
    payload = member_pop_payload(body.member_key, body.memo_public_key, body.name)
    return verify_signature(
        body.member_key, TAG_REGISTER_MEMBER_POP, chain_id, payload, body.proof_of_possession
    )


def _check_member_possession(body: RegisterMemberBody, chain_id: bytes) -> None:
    problem = ed25519_key_problem(body.member_key)
    if problem is not None:
        raise TxRejected(Reason.BAD_PROOF_OF_POSSESSION, f"member key: {problem}")
    if not check_member_possession(body, chain_id):
        raise TxRejected(
            Reason.BAD_PROOF_OF_POSSESSION,
            "the member key did not sign (member key, memo key, name) for this chain",
        )


def decode_approvals(dtx: DecodedTx) -> ApprovalsRecord:
    try:
        approvals = ApprovalsRecord.decode(dtx.tx.witness)
    except DecodeError as exc:
        raise TxRejected(Reason.MALFORMED, f"approvals: {exc}") from None
    signers = [a.member for a in approvals.approvals]
    if len(set(signers)) != len(signers) or dtx.signer in signers:
        raise TxRejected(Reason.MALFORMED, "a member approves twice")
    return approvals


def range_statement(dtx: DecodedTx) -> RangeStatement | None:
    """The aggregated range proof statement of an issue or transfer, else ``None``."""
    body = dtx.body
    if not isinstance(body, (IssueBody, TransferBody, LoanOriginateBody, LoanRepayBody)):
        return None
    commitments = tuple(o.commitment for o in body.outputs)
    return RangeStatement(commitments, body.range_proof, RANGE_BITS)


def tx_statements(dtx: DecodedTx, receipt: Receipt) -> tuple[RangeStatement, ...]:
    """Every range statement of an applied tx: its output proof, then the state-derived ones."""
    own = range_statement(dtx)
    return ((own,) if own is not None else ()) + receipt.range_statements


def sum_points(points: typing.Iterable[bytes]) -> bytes:
    acc = group.IDENTITY
    for point in points:
        acc = group.add(acc, point)
    return acc


def issue_excess(body: IssueBody) -> bytes:
    """``amount·G − Σ outputs``."""
    return group.sub(group.mul_base(body.amount), sum_points(o.commitment for o in body.outputs))


# --- stateful -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Receipt:
    """What an accepted tx did. ``created``/``spent``: (output id, owner) pairs."""

    tx_id: bytes
    kind: bytes
    created: tuple[tuple[bytes, bytes], ...] = ()
    spent: tuple[tuple[bytes, bytes], ...] = ()
    range_statements: tuple[RangeStatement, ...] = ()
    """Range statements built from the state (a loan's derived commitments); the
    tx's own output proof is ``range_statement``. Both go into the block's batch."""


def check_nonce(view: StateView, signer: bytes, nonce: int) -> None:
    last = last_nonce(view, signer)
    if nonce <= last:
        raise TxRejected(Reason.REPLAYED, f"nonce {nonce} is not above the last used {last}")
    if nonce - last > MAX_NONCE_STEP:
        raise TxRejected(
            Reason.NONCE_TOO_FAR, f"nonce {nonce} is more than {MAX_NONCE_STEP} above {last}"
        )
    view.put(state_key(NS_NONCE, signer), encode_uint(nonce))


def is_member(state: StateReader, public_key: bytes) -> bool:
    """A member record exists (no decoding: the rules write only whole records)."""
    return state.get_state(state_key(NS_MEMBER, public_key)) is not None


def require_member(view: StateView, key: bytes) -> None:
    if not is_member(view, key):
        raise TxRejected(Reason.NOT_MEMBER, f"{key.hex()[:16]} is not a member bank")


def check_owners(view: StateView, outputs: tuple[TxOutput, ...]) -> None:
    for i, output in enumerate(outputs):
        if not is_registered(view, output.owner):
            raise TxRejected(Reason.UNREGISTERED, f"output {i}: owner is not registered")


def create_outputs(
    view: StateView, dtx: DecodedTx, asset: bytes, outputs: tuple[TxOutput, ...]
) -> tuple[tuple[bytes, bytes], ...]:
    created = []
    for i, output in enumerate(outputs):
        output_id = output_id_of(dtx.tx_id, i)
        record = OutputRecord(output.owner, asset, output.commitment)
        view.put(state_key(NS_OUTPUT, output_id), record.encode())
        created.append((output_id, output.owner))
    return tuple(created)


def add_excess(
    view: StateView, asset_id: bytes, asset: AssetRecord, excess: bytes, amount: int
) -> None:
    total = asset.issued_total + amount
    if total > U64_MAX:
        raise TxRejected(Reason.SUPPLY_OVERFLOW, "issued total would exceed 2^64 − 1")
    updated = AssetRecord(asset.symbol, asset.issuer, total, group.add(asset.excess_sum, excess))
    view.put(state_key(NS_ASSET, asset_id), updated.encode())


def rebase_asset_totals(read: bytes, written: bytes, current: bytes) -> bytes | None:
    """The asset record a tx that read ``read`` and wrote ``written`` writes where the
    record is ``current`` instead; None if its checks could decide otherwise there.

    Why that is the tx's outcome: the rules read an asset record only through
    ``get_asset``, for its existence, its issuer (an issue) and the totals that
    ``add_excess`` advances. With the same symbol and issuer, and an issued total
    that still fits in a u64, ``apply_tx`` takes the same path, makes the same
    other writes, and advances the totals of ``current`` by the same amount and
    excess (sums, so the order of the txs does not change them). Every transfer
    of an asset advances its record, so without this each one would undo every
    other's recorded result (``ledger.recorded_apply``).
    """
    added = _asset_contribution(read, written)
    if added is None:
        return None
    symbol, issuer, amount, excess = added
    try:
        now = AssetRecord.decode(current)
    except DecodeError:
        return None
    total = now.issued_total + amount
    if now.symbol != symbol or now.issuer != issuer or total > U64_MAX:
        return None
    return AssetRecord(symbol, issuer, total, group.add(now.excess_sum, excess)).encode()


@functools.lru_cache(maxsize=4096)
def _asset_contribution(read: bytes, written: bytes) -> tuple[str, bytes, int, bytes] | None:
    """(symbol, issuer, amount, excess) a tx added to an asset record; remembered,
    since a pending tx is rebased after every block until it commits."""
    try:
        before, after = AssetRecord.decode(read), AssetRecord.decode(written)
    except DecodeError:
        return None
    amount = after.issued_total - before.issued_total
    if (before.symbol, before.issuer) != (after.symbol, after.issuer) or amount < 0:
        return None
    return after.symbol, after.issuer, amount, group.sub(after.excess_sum, before.excess_sum)


def _check_quorum(view: StateView, dtx: DecodedTx, *, removing: bool = False) -> None:
    """Proposer and approvers are members, and enough of them: ``governance_quorum``,
    or ``removal_quorum`` for a removal (whose target is not among the approvers)."""
    current = members(view)
    approvers = {dtx.signer} | {a.member for a in decode_approvals(dtx).approvals}
    for key in approvers:
        require_member(view, key)
    needed = removal_quorum(len(current)) if removing else governance_quorum(len(current))
    if len(approvers) < needed:
        what = "other members" if removing else "members"
        total = len(current) - 1 if removing else len(current)
        raise TxRejected(
            Reason.NOT_AUTHORIZED, f"{len(approvers)} of {total} {what}, need {needed}"
        )


def _apply_remove_member(view: StateView, dtx: DecodedTx, body: RemoveMemberBody) -> Receipt:
    require_member(view, body.member_key)
    remaining = len(members(view)) - 1
    if remaining < MIN_MEMBERS:
        raise TxRejected(
            Reason.TOO_FEW_MEMBERS, f"{remaining} members would remain, at least {MIN_MEMBERS}"
        )
    _check_quorum(view, dtx, removing=True)
    check_nonce(view, body.proposer, body.nonce)
    view.delete(state_key(NS_MEMBER, body.member_key))
    return Receipt(dtx.tx_id, dtx.kind)


def apply_tx(view: StateView, dtx: DecodedTx) -> Receipt:
    """Stateful checks of an already stateless-checked tx, then its writes into ``view``.

    On ``TxRejected`` the view may hold partial writes: apply through a
    ``view.child()`` and merge only on success (``ledger.apply`` does).
    """
    body = dtx.body
    if isinstance(body, LOAN_BODIES):
        from ledger.loans import apply_loan_tx  # noqa: PLC0415 (loans import this module)

        return apply_loan_tx(view, dtx, body)
    if isinstance(body, TransferBody):
        return _apply_transfer(view, dtx, body)
    if isinstance(body, IssueBody):
        return _apply_issue(view, dtx, body)
    if isinstance(body, RegisterAccountBody):
        require_member(view, body.registrar)
        if is_registered(view, body.account_key):
            raise TxRejected(Reason.ALREADY_REGISTERED, "account already registered")
        check_nonce(view, body.registrar, body.nonce)
        record = AccountRecord(body.memo_public_key, body.registrar)
        view.put(state_key(NS_ACCOUNT, body.account_key), record.encode())
        return Receipt(dtx.tx_id, dtx.kind)
    if isinstance(body, AttestBody):
        require_member(view, body.member)
        check_nonce(view, body.member, body.nonce)
        record_a = AttestRecord(body.member, body.label, body.digest)
        view.put(state_key(NS_ATTEST, dtx.tx_id), record_a.encode())
        return Receipt(dtx.tx_id, dtx.kind)
    if isinstance(body, RegisterMemberBody):
        _check_quorum(view, dtx)
        if get_member(view, body.member_key) or is_registered(view, body.member_key):
            raise TxRejected(Reason.ALREADY_REGISTERED, "key already a member or an account")
        for new_asset in body.assets:
            if get_asset(view, new_asset.asset_id) is not None:
                raise TxRejected(Reason.ALREADY_REGISTERED, "asset id already exists")
        check_nonce(view, body.proposer, body.nonce)
        view.put(
            state_key(NS_MEMBER, body.member_key),
            MemberRecord(body.name, body.memo_public_key).encode(),
        )
        view.put(
            state_key(NS_ACCOUNT, body.member_key),
            AccountRecord(body.memo_public_key, body.member_key).encode(),
        )
        for new_asset in body.assets:
            record_s = AssetRecord(new_asset.symbol, body.member_key, 0, group.IDENTITY)
            view.put(state_key(NS_ASSET, new_asset.asset_id), record_s.encode())
        return Receipt(dtx.tx_id, dtx.kind)
    if isinstance(body, RemoveMemberBody):
        return _apply_remove_member(view, dtx, body)
    _check_quorum(view, dtx)
    check_nonce(view, body.proposer, body.nonce)
    view.put(state_key(NS_META, META_AUDITOR), body.auditor_memo_public_key)
    return Receipt(dtx.tx_id, dtx.kind)


def _apply_issue(view: StateView, dtx: DecodedTx, body: IssueBody) -> Receipt:
    asset = get_asset(view, body.asset)
    if asset is None:
        raise TxRejected(Reason.UNKNOWN_ASSET, f"asset {body.asset.hex()[:16]}")
    if asset.issuer != body.issuer:
        raise TxRejected(Reason.NOT_ISSUER, "the signer does not issue this asset")
    require_member(view, body.issuer)  # a removed member keeps its asset but mints no more
    check_owners(view, body.outputs)
    check_nonce(view, body.issuer, body.nonce)
    add_excess(view, body.asset, asset, issue_excess(body), body.amount)
    created = create_outputs(view, dtx, body.asset, body.outputs)
    return Receipt(dtx.tx_id, dtx.kind, created=created)


def _apply_transfer(view: StateView, dtx: DecodedTx, body: TransferBody) -> Receipt:
    if not is_registered(view, body.sender):
        raise TxRejected(Reason.UNREGISTERED, "the sender is not a registered account")
    input_commitments = owned_input_commitments(view, body.sender, body.asset, body.inputs)
    check_owners(view, body.outputs)
    asset = get_asset(view, body.asset)
    if asset is None:
        raise TxRejected(Reason.UNKNOWN_ASSET, f"asset {body.asset.hex()[:16]}")
    excess = group.sub(
        sum_points(input_commitments), sum_points(o.commitment for o in body.outputs)
    )
    if excess == group.IDENTITY or not verify_excess(excess, dtx.tx_id, dtx.tx.witness):
        raise TxRejected(Reason.UNBALANCED, "Σ inputs − Σ outputs is not a proven x·H")
    spent = spend_inputs(view, dtx.tx_id, body.sender, body.inputs)
    add_excess(view, body.asset, asset, excess, 0)
    created = create_outputs(view, dtx, body.asset, body.outputs)
    return Receipt(dtx.tx_id, dtx.kind, created=created, spent=spent)


def spend_inputs(
    view: StateView, tx_id: bytes, owner: bytes, inputs: tuple[bytes, ...]
) -> tuple[tuple[bytes, bytes], ...]:
    """Mark ``inputs`` spent by ``tx_id``; (output id, owner) pairs for the receipt."""
    for output_id in inputs:
        view.put(state_key(NS_OUTPUT, output_id), SpentRecord(tx_id).encode())
    return tuple((output_id, owner) for output_id in inputs)


def owned_input_commitments(
    view: StateView, sender: bytes, asset_id: bytes, inputs: tuple[bytes, ...]
) -> list[bytes]:
    """The commitments of ``inputs``, each unspent, owned by ``sender`` and of ``asset_id``."""
    input_commitments = []
    for i, output_id in enumerate(inputs):
        record = output_slot(view, output_id)
        if record is None:
            raise TxRejected(Reason.UNKNOWN_INPUT, f"input {i} does not exist")
        if isinstance(record, SpentRecord):
            raise TxRejected(Reason.DOUBLE_SPEND, f"input {i} is already spent")
        if record.owner != sender:
            raise TxRejected(Reason.NOT_OWNER, f"input {i} belongs to another account")
        if record.asset != asset_id:
            raise TxRejected(Reason.WRONG_ASSET, f"input {i} holds another asset")
        input_commitments.append(record.commitment)
    return input_commitments
