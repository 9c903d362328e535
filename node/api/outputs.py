"""``/v1/outputs?owner=`` (paginated) and ``/v1/outputs/{id}`` (with its sealed memos)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

from aiohttp import web

from ledger.block import decode_block
from ledger.invariants import InvariantViolation, invariant
from ledger.rules import OutputRecord, SpentRecord, output_slot
from ledger.store import StoreReader, TxLocation
from ledger.tx import (
    BODY_TYPES,
    OUTPUT_ID_BYTES,
    IssueBody,
    LoanOriginateBody,
    LoanRepayBody,
    TransferBody,
    Tx,
    split_output_id,
)
from node.api.context import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, services_of
from node.api.errors import ApiCode, ApiError
from node.api.params import check_known_params, optional_int, parse_hex
from node.api.views import Json, b64

PUBLIC_KEY_BYTES: Final = 32


async def list_outputs(request: web.Request) -> web.Response:
    """An owner's outputs in id order, ``limit`` at a time after ``after`` (an output id).

    Runs on the event loop, so its work follows the page, never the owner: a
    seek into the owner index for ``limit + 1`` ids, and each block decoded once.
    """
    query = request.query
    check_known_params(query, frozenset({"owner", "limit", "after"}))
    if "owner" not in query:
        raise ApiError(ApiCode.INVALID_PARAMETER, "owner is required")
    owner = parse_hex(query["owner"], PUBLIC_KEY_BYTES, "owner")
    limit = optional_int(query, "limit", default=DEFAULT_PAGE_LIMIT, low=1, high=MAX_PAGE_LIMIT)
    after = query.get("after")
    after_id = None if after is None else parse_hex(after, OUTPUT_ID_BYTES, "after")
    store = services_of(request).store
    # One id past the page tells whether there is a next one.
    ids = store.outputs_by_owner_page(owner, after_id, limit + 1)
    page = ids[:limit]
    body: Json = {
        "outputs": _output_views(store, page),
        "next_after": page[-1].hex() if len(ids) > limit else None,
    }
    return web.json_response(body)


_OutputBody = IssueBody | TransferBody | LoanOriginateBody | LoanRepayBody


class _Located(NamedTuple):
    output_id: bytes
    slot: OutputRecord | SpentRecord
    location: TxLocation


def _locate(store: StoreReader, output_id: bytes) -> _Located:
    slot = output_slot(store, output_id)
    if slot is None:
        raise ApiError(ApiCode.OUTPUT_NOT_FOUND, "no output with that id")
    location = store.tx_location(split_output_id(output_id)[0])
    if location is None:
        raise InvariantViolation("an output whose tx is not indexed")
    return _Located(output_id, slot, location)


def _output_views(
    store: StoreReader, output_ids: Sequence[bytes], *, memos: bool = False
) -> list[Json]:
    """The views of ``output_ids``, in that order: the output, its spent status and
    (with ``memos``) its sealed memos.

    Owner, asset and commitment come from the creating tx (the state forgets
    them once an output is spent); the tx is found through the tx index, since
    an output id starts with the id of the tx that made it. The outputs are
    taken a height at a time: each block (up to ~1.3 MB) and each tx body is
    decoded once, and one decoded block is held at a time.
    """
    by_height: dict[int, list[tuple[int, _Located]]] = {}
    for position, output_id in enumerate(output_ids):
        located = _locate(store, output_id)
        by_height.setdefault(located.location.height, []).append((position, located))
    views: dict[int, Json] = {}
    for height, group in by_height.items():
        block_bytes = store.block_at(height)
        if block_bytes is None:
            raise InvariantViolation(f"an indexed tx in block {height}, which is not stored")
        block = decode_block(block_bytes)
        bodies: dict[int, _OutputBody] = {}
        for position, located in group:
            index_in_block = located.location.index_in_block
            body = bodies.get(index_in_block)
            if body is None:
                body = bodies[index_in_block] = _output_body(block.txs[index_in_block])
            views[position] = _output_view(located, body, memos=memos)
    return [views[position] for position in range(len(output_ids))]


def _output_body(tx: Tx) -> _OutputBody:
    body = BODY_TYPES[tx.kind].decode(tx.body)
    if not isinstance(body, IssueBody | TransferBody | LoanOriginateBody | LoanRepayBody):
        raise InvariantViolation("an output made by a tx that creates none")
    return body


def _output_view(located: _Located, body: _OutputBody, *, memos: bool) -> Json:
    output_id, slot, location = located
    tx_id, index = split_output_id(output_id)
    output = body.outputs[index]
    view: Json = {
        "id": output_id.hex(),
        "tx_id": tx_id.hex(),
        "height": location.height,
        "owner": output.owner.hex(),
        "asset": body.asset.hex(),
        "commitment": output.commitment.hex(),
        "spent": isinstance(slot, SpentRecord),
        "spent_by": slot.spent_by.hex() if isinstance(slot, SpentRecord) else None,
    }
    invariant(
        isinstance(slot, SpentRecord)
        or (isinstance(slot, OutputRecord) and slot.commitment == output.commitment),
        "state and block disagree on an output",
    )
    if memos:
        view["owner_memo"] = b64(output.owner_memo)
        view["audit_memo"] = b64(output.audit_memo)
    return view


async def get_output(request: web.Request) -> web.Response:
    check_known_params(request.query, frozenset())
    output_id = parse_hex(request.match_info["output_id"], OUTPUT_ID_BYTES, "output id")
    store = services_of(request).store
    return web.json_response(_output_views(store, [output_id], memos=True)[0])
