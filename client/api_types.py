"""Typed views of the node's ``/v1`` answers (docs/api.md), parsed from JSON.

Hex fields become ``bytes``; a field of the wrong type or shape raises
``BadResponseError`` so a broken or foreign node is one clear error, never a
``KeyError`` deep in a caller.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Final, Literal, TypeVar

from ledger.invariants import InvariantViolation
from ledger.loans import STATUS_ACTIVE, STATUS_CLOSED, LoanRecord
from ledger.tx import LoanTerms

Json = dict[str, object]
if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Answer = TypeVar("_Answer", bound="DataclassInstance")


class BadResponseError(ValueError):
    """The node answered with JSON that does not have the documented shape."""


def _field(obj: Json, name: str) -> object:
    if name not in obj:
        raise BadResponseError(f"answer lacks field {name!r}")
    return obj[name]


def _int(obj: Json, name: str) -> int:
    value = _field(obj, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadResponseError(f"field {name!r} is not an integer")
    return value


def _opt_int(obj: Json, name: str) -> int | None:
    return None if obj.get(name) is None else _int(obj, name)


def _str(obj: Json, name: str) -> str:
    value = _field(obj, name)
    if not isinstance(value, str):
        raise BadResponseError(f"field {name!r} is not a string")
    return value


def _opt_str(obj: Json, name: str) -> str | None:
    return None if obj.get(name) is None else _str(obj, name)


def _bool(obj: Json, name: str) -> bool:
    value = _field(obj, name)
    if not isinstance(value, bool):
        raise BadResponseError(f"field {name!r} is not a boolean")
    return value


def _hex(obj: Json, name: str) -> bytes:
    text = _str(obj, name)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise BadResponseError(f"field {name!r} is not hex") from None


def _opt_hex(obj: Json, name: str) -> bytes | None:
    return None if obj.get(name) is None else _hex(obj, name)


def _b64(obj: Json, name: str) -> bytes:
    try:
        return base64.b64decode(_str(obj, name), validate=True)
    except binascii.Error:
        raise BadResponseError(f"field {name!r} is not base64") from None


def _object(value: object, what: str) -> Json:
    if not isinstance(value, dict):
        raise BadResponseError(f"{what} is not a JSON object")
    return value


def _objects(obj: Json, name: str) -> list[Json]:
    value = _field(obj, name)
    if not isinstance(value, list):
        raise BadResponseError(f"field {name!r} is not a list")
    return [_object(item, f"an item of {name!r}") for item in value]


def _opt_b64(obj: Json, name: str) -> bytes | None:
    return None if obj.get(name) is None else _b64(obj, name)


_FieldParser = Callable[[Json, str], object]

# A field's annotation (a string: ``from __future__ import annotations``) names the parser
# of the same-named JSON field, so each answer type lists its fields once, not three times.
_PARSER_BY_ANNOTATION: Final[dict[str, _FieldParser]] = {
    "int": _int,
    "int | None": _opt_int,
    "str": _str,
    "str | None": _opt_str,
    "bool": _bool,
    "bytes": _hex,
    "bytes | None": _opt_hex,
}


def _parse(cls: type[_Answer], obj: Json, **parsed: object) -> _Answer:
    """``cls`` from ``obj``: the fields in ``parsed`` as given, every other one read from the
    same-named JSON field by the parser its annotation names."""
    values: dict[str, object] = {}
    for field in fields(cls):
        if field.name in parsed:
            values[field.name] = parsed[field.name]
            continue
        parser = _PARSER_BY_ANNOTATION.get(str(field.type))
        if parser is None:
            raise InvariantViolation(f"{cls.__name__}.{field.name}: no parser for {field.type}")
        values[field.name] = parser(obj, field.name)
    return cls(**values)


@dataclass(frozen=True, slots=True)
class CertificateCommit:
    sender: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class Certificate:
    view: int
    seq: int
    digest: bytes
    commits: tuple[CertificateCommit, ...]

    @classmethod
    def from_json(cls, obj: Json) -> Certificate:
        commits = tuple(_parse(CertificateCommit, c) for c in _objects(obj, "commits"))
        return _parse(cls, obj, commits=commits)


def _opt_certificate(obj: Json, name: str) -> Certificate | None:
    value = obj.get(name)
    return None if value is None else Certificate.from_json(_object(value, name))


TxState = Literal["pending", "committed", "rejected", "unknown"]


@dataclass(frozen=True, slots=True)
class TxStatus:
    """A tx's status: ``pending``, ``committed`` (with its place and certificate)
    or ``rejected`` (with the ledger's reason; ``height`` is None at admission)."""

    id: bytes
    status: TxState
    height: int | None = None
    index: int | None = None
    block_hash: bytes | None = None
    certificate: Certificate | None = None
    reason: str | None = None

    @property
    def final(self) -> bool:
        return self.status in ("committed", "rejected")

    @classmethod
    def from_json(cls, obj: Json) -> TxStatus:
        status = _str(obj, "status")
        if status not in ("pending", "committed", "rejected", "unknown"):
            raise BadResponseError(f"unknown tx status {status!r}")
        return _parse(cls, obj, status=status, certificate=_opt_certificate(obj, "certificate"))


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One result of ``txs:batch``: a status, or the error code and message (and, for
    a busy answer, how long to wait before sending it again)."""

    status: TxStatus | None
    error_code: str | None
    error_message: str | None
    id: bytes | None
    retry_after_ms: int | None = None

    @classmethod
    def from_json(cls, obj: Json) -> BatchItem:
        error = obj.get("error")
        if error is None:
            status = TxStatus.from_json(obj)
            return cls(status, None, None, status.id)
        err = _object(error, "error")
        return cls(
            None,
            _str(err, "code"),
            _str(err, "message"),
            _opt_hex(obj, "id"),
            _opt_int(err, "retry_after_ms"),
        )


@dataclass(frozen=True, slots=True)
class OutputRef:
    id: bytes
    owner: bytes
    commitment: bytes

    @classmethod
    def from_json(cls, obj: Json) -> OutputRef:
        return _parse(cls, obj)


@dataclass(frozen=True, slots=True)
class BlockTx:
    """A tx as a block shows it: never an amount, only commitments."""

    id: bytes
    kind: str
    signer: bytes | None
    asset: bytes | None
    inputs: tuple[bytes, ...]
    outputs: tuple[OutputRef, ...]

    @classmethod
    def from_json(cls, obj: Json) -> BlockTx:
        raw_inputs = obj.get("inputs", [])
        if not isinstance(raw_inputs, list) or not all(isinstance(i, str) for i in raw_inputs):
            raise BadResponseError("field 'inputs' is not a list of hex strings")
        try:
            inputs = tuple(bytes.fromhex(i) for i in raw_inputs)
        except ValueError:
            raise BadResponseError("field 'inputs' is not hex") from None
        outputs = _objects(obj, "outputs") if "outputs" in obj else []
        return _parse(
            cls, obj, inputs=inputs, outputs=tuple(OutputRef.from_json(o) for o in outputs)
        )


@dataclass(frozen=True, slots=True)
class BlockHeader:
    version: int
    height: int
    prev_hash: bytes
    tx_root: bytes
    state_root: bytes
    proposer: bytes
    view: int
    timestamp_ms: int

    @classmethod
    def from_json(cls, obj: Json) -> BlockHeader:
        return _parse(cls, obj)


@dataclass(frozen=True, slots=True)
class Block:
    """A committed block; height 0 is the genesis (no header, no certificate)."""

    height: int
    hash: bytes
    genesis: bool
    header: BlockHeader | None
    txs: tuple[BlockTx, ...]
    certificate: Certificate | None

    @classmethod
    def from_json(cls, obj: Json) -> Block:
        header = obj.get("header")
        return _parse(
            cls,
            obj,
            header=None if header is None else BlockHeader.from_json(_object(header, "header")),
            txs=tuple(BlockTx.from_json(t) for t in _objects(obj, "txs")),
            certificate=_opt_certificate(obj, "certificate"),
        )


@dataclass(frozen=True, slots=True)
class Validator:
    index: int
    name: str
    public_key: bytes

    @classmethod
    def from_json(cls, obj: Json) -> Validator:
        return _parse(cls, obj)


@dataclass(frozen=True, slots=True)
class Asset:
    id: bytes
    symbol: str
    issuer: bytes
    issued_total: int

    @classmethod
    def from_json(cls, obj: Json) -> Asset:
        return _parse(cls, obj)


@dataclass(frozen=True, slots=True)
class ChainInfo:
    """What a client needs to build a tx (``GET /v1/chain``)."""

    chain_id: bytes
    chain_name: str
    genesis_hash: bytes
    genesis_time_ms: int
    height: int
    auditor_memo_public_key: bytes
    assets: tuple[Asset, ...]
    validators: tuple[Validator, ...]
    max_tx_bytes: int
    max_block_txs: int

    def asset_by_symbol(self, symbol: str) -> Asset | None:
        return next((a for a in self.assets if a.symbol == symbol), None)

    @classmethod
    def from_json(cls, obj: Json) -> ChainInfo:
        params = _object(_field(obj, "params"), "params")
        return _parse(
            cls,
            obj,
            assets=tuple(Asset.from_json(a) for a in _objects(obj, "assets")),
            validators=tuple(Validator.from_json(v) for v in _objects(obj, "validators")),
            max_tx_bytes=_int(params, "max_tx_bytes"),
            max_block_txs=_int(params, "max_block_txs"),
        )


@dataclass(frozen=True, slots=True)
class Output:
    """An output with its sealed memos (``GET /v1/outputs/{id}``)."""

    id: bytes
    tx_id: bytes
    height: int
    owner: bytes
    asset: bytes
    commitment: bytes
    spent: bool
    spent_by: bytes | None
    owner_memo: bytes | None
    audit_memo: bytes | None

    @classmethod
    def from_json(cls, obj: Json) -> Output:
        return _parse(
            cls,
            obj,
            owner_memo=_opt_b64(obj, "owner_memo"),
            audit_memo=_opt_b64(obj, "audit_memo"),
        )


@dataclass(frozen=True, slots=True)
class OutputPage:
    outputs: tuple[Output, ...]
    next_after: bytes | None

    @classmethod
    def from_json(cls, obj: Json) -> OutputPage:
        return _parse(
            cls, obj, outputs=tuple(Output.from_json(o) for o in _objects(obj, "outputs"))
        )


@dataclass(frozen=True, slots=True)
class Account:
    public_key: bytes
    memo_public_key: bytes
    registered_by: bytes | None
    member: bool
    member_name: str | None
    last_nonce: int

    @classmethod
    def from_json(cls, obj: Json) -> Account:
        return _parse(cls, obj)


LoanStatus = Literal["active", "closed"]


@dataclass(frozen=True, slots=True)
class Loan:
    """A loan at a height (``GET /v1/loans/{id}``, an item of a borrower's list):
    public terms, status and commitments, never an amount."""

    id: bytes
    lender: bytes
    borrower: bytes
    asset: bytes
    rate_bps: int
    period_blocks: int
    maturity_height: int
    purpose: str
    principal_commitment: bytes
    outstanding_commitment: bytes
    status: LoanStatus
    overdue: bool
    originated_height: int
    accrued_periods: int
    closed_height: int | None

    @property
    def closed(self) -> bool:
        return self.status == "closed"

    def record(self) -> LoanRecord:
        """The ledger's record of this loan, as the node's state holds it at that height:
        what ``ledger.exposure`` and ``ledger.credit_report`` verify against."""
        terms = LoanTerms(self.rate_bps, self.period_blocks, self.maturity_height, self.purpose)
        return LoanRecord(
            self.lender,
            self.borrower,
            self.asset,
            terms,
            self.principal_commitment,
            self.outstanding_commitment,
            STATUS_CLOSED if self.closed else STATUS_ACTIVE,
            self.originated_height,
            self.accrued_periods,
            self.closed_height or 0,
        )

    @classmethod
    def from_json(cls, obj: Json) -> Loan:
        status = _str(obj, "status")
        if status not in ("active", "closed"):
            raise BadResponseError(f"unknown loan status {status[:20]!r}")
        return _parse(cls, obj, status=status)


@dataclass(frozen=True, slots=True)
class BorrowerLoans:
    """``GET /v1/borrowers/{pk}/loans?height=h``: every loan of the borrower at ``height``,
    with the hash and certificate of that block."""

    borrower: bytes
    height: int
    block_hash: bytes
    certificate: Certificate | None
    loans: tuple[Loan, ...]

    def records(self) -> list[tuple[bytes, LoanRecord]]:
        """(loan id, record) in the node's index order, as ``ledger.loans.loans_of`` gives."""
        return [(loan.id, loan.record()) for loan in self.loans]

    @classmethod
    def from_json(cls, obj: Json) -> BorrowerLoans:
        return _parse(
            cls,
            obj,
            certificate=_opt_certificate(obj, "certificate"),
            loans=tuple(Loan.from_json(item) for item in _objects(obj, "loans")),
        )


@dataclass(frozen=True, slots=True)
class PeerView:
    index: int
    public_key: bytes
    connected: bool


@dataclass(frozen=True, slots=True)
class CatchUpView:
    target_height: int
    done_height: int


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A snapshot of one node (``GET /v1/status``)."""

    height: int
    view: int
    primary: int
    state_root: bytes
    last_commit_ms: int | None
    peers: tuple[PeerView, ...]
    mempool_txs: int
    mempool_bytes: int
    catching_up: CatchUpView | None
    stopped: bool
    stop_reason: str | None
    wal_latched: bool
    msm_backend: str

    @classmethod
    def from_json(cls, obj: Json) -> NodeStatus:
        catching = obj.get("catching_up")
        catch_obj = None if catching is None else _object(catching, "catching_up")
        return _parse(
            cls,
            obj,
            peers=tuple(_parse(PeerView, p) for p in _objects(obj, "peers")),
            catching_up=None if catch_obj is None else _parse(CatchUpView, catch_obj),
        )


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    failed: tuple[str, ...]

    @classmethod
    def from_json(cls, obj: Json) -> Health:
        failed = _field(obj, "failed")
        if not isinstance(failed, list) or not all(isinstance(f, str) for f in failed):
            raise BadResponseError("field 'failed' is not a list of strings")
        return cls(_str(obj, "status") == "ok", tuple(failed))
