"""``/v1/outputs?owner=`` (paginated) and ``/v1/outputs/{id}`` (with its sealed memos)."""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

from aiohttp import web

from ledger.block import decode_block
from ledger.invariants import InvariantViolation, invariant
from ledger.rules import OutputRecord, SpentRecord, output_slot
from ledger.tx import (
    BODY_TYPES,
    OUTPUT_ID_BYTES,
    IssueBody,
    LoanOriginateBody,
    LoanRepayBody,
    TransferBody,
    split_output_id,
)
from node.api.context import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, services_of
from node.api.errors import ApiCode, ApiError
from node.api.params import check_known_params, optional_int, parse_hex
from node.api.views import Json, b64
from node.services import NodeServices

PUBLIC_KEY_BYTES: Final = 32


async def list_outputs(request: web.Request) -> web.Response:
    """An owner's outputs in id order, ``limit`` at a time after ``after`` (an output id)."""
    query = request.query
    check_known_params(query, frozenset({"owner", "limit", "after"}))
    if "owner" not in query:
        raise ApiError(ApiCode.INVALID_PARAMETER, "owner is required")
    owner = parse_hex(query["owner"], PUBLIC_KEY_BYTES, "owner")
    limit = optional_int(query, "limit", default=DEFAULT_PAGE_LIMIT, low=1, high=MAX_PAGE_LIMIT)
    after = query.get("after")
    services = services_of(request)
    ids = sorted(services.store.outputs_by_owner(owner))
    start = 0 if after is None else bisect_right(ids, parse_hex(after, OUTPUT_ID_BYTES, "after"))
    page = ids[start : start + limit]
    more = start + limit < len(ids)
    body: Json = {
        "outputs": [_output_view(services, output_id) for output_id in page],
        "next_after": page[-1].hex() if more else None,
    }
    return web.json_response(body)


def _output_view(services: NodeServices, output_id: bytes, *, memos: bool = False) -> Json:
    """The output, its spent status and (with ``memos``) its sealed memos.

    Owner, asset and commitment come from the creating tx (the state forgets
    them once an output is spent); the tx is found through the tx index, since
    an output id starts with the id of the tx that made it.
    """
    store = services.store
    slot = output_slot(store, output_id)
    if slot is None:
        raise ApiError(ApiCode.OUTPUT_NOT_FOUND, "no output with that id")
    tx_id, index = split_output_id(output_id)
    location = store.tx_location(tx_id)
    if location is None:
        raise InvariantViolation("an output whose tx is not indexed")
    block = decode_block(store.block_at(location.height) or b"")
    tx = block.txs[location.index_in_block]
    body = BODY_TYPES[tx.kind].decode(tx.body)
    if not isinstance(body, IssueBody | TransferBody | LoanOriginateBody | LoanRepayBody):
        raise InvariantViolation("an output made by a tx that creates none")
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
    return web.json_response(_output_view(services_of(request), output_id, memos=True))
