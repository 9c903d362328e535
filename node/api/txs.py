"""``/v1/txs``: submit one tx or a batch, and read a tx's status (optionally waiting).

Logging: one INFO line per request, never one per admitted tx of a batch. At
the rates the node is built for (docs/performance.md) a line per admitted tx
was a formatted record and a write per tx per node; the ids of admitted txs are
in ``/v1/events`` and in the chain, so they are logged at DEBUG only. A
rejection keeps its own INFO line (``tx rejected`` with ``tx_id`` and
``reason``): an operator greps for the id a client reports, honest load has
almost none, and a client sending many bad txs is bounded by the body limit and
the per-account rate limit like any other client.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Callable
from typing import Final

import msgpack
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ledger.reasons import Reason
from node.api.context import services_of, settings_of
from node.api.errors import ApiCode, ApiError, error_body
from node.api.params import check_known_params, parse_hex, parse_int
from node.api.views import Json, certificate_view
from node.logging import REQUEST_ID
from node.services import (
    NODE_STOPPED,
    Accepted,
    Busy,
    Committed,
    Duplicate,
    NodeServices,
    Pending,
    SubmitOutcome,
    TxRejectedStatus,
    TxStatus,
    Unknown,
)

LOG = logging.getLogger("veil.api.txs")
MSGPACK: Final = "application/msgpack"
JSON: Final = "application/json"
TX_ID_BYTES: Final = 32


def _json_body(raw: bytes) -> dict[str, object]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nesting deeper than the interpreter's stack, e.g. b"[" * 100000.
        raise ApiError(ApiCode.INVALID_JSON, "body is not JSON") from None
    if not isinstance(value, dict):
        raise ApiError(ApiCode.INVALID_JSON, "body must be a JSON object")
    return value


def _base64_tx(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise ApiError(ApiCode.INVALID_JSON, f"{where} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(ApiCode.INVALID_BASE64, f"{where} is not standard base64") from None


async def _body(request: web.Request) -> tuple[str, bytes]:
    """The content type (msgpack or JSON) and the raw body; 415 for anything else,
    or for a compressed body; 400 ``INVALID_BODY`` for a body whose framing is broken."""
    content_type = request.content_type
    if content_type not in (MSGPACK, JSON):
        raise ApiError(
            ApiCode.UNSUPPORTED_MEDIA_TYPE, f'send {MSGPACK} tx bytes or {JSON} {{"tx": base64}}'
        )
    # The app never decompresses (``create_app``): txs are incompressible, and a
    # decoder is work and failure modes a client could aim at the node.
    if request.headers.get("Content-Encoding", "").strip().lower() not in ("", "identity"):
        raise ApiError(ApiCode.UNSUPPORTED_MEDIA_TYPE, "send the body without a Content-Encoding")
    try:
        return content_type, await request.read()
    except (web.RequestPayloadError, HttpProcessingError):
        # A malformed chunked body (aiohttp's pure-Python parser reports it here).
        raise ApiError(ApiCode.INVALID_BODY, "the body could not be read") from None


def outcome_view(outcome: SubmitOutcome, services: NodeServices) -> Json:
    """A submit outcome as the 202 body, or raise its ``ApiError``."""
    if isinstance(outcome, Accepted):
        return {"id": outcome.tx_id.hex(), "status": "pending"}
    if isinstance(outcome, Duplicate):
        # Idempotent: the same tx again answers with what the node knows of it now
        # (pending while it is between the mempool and a block).
        return {"id": outcome.tx_id.hex(), "status": status_word(services.tx_status(outcome.tx_id))}
    if isinstance(outcome, Busy):
        message = "node stopped" if outcome.code == NODE_STOPPED else "node busy"
        wait_ms = outcome.retry_after_ms
        raise ApiError(outcome.code, f"{message}, retry later", retry_after_ms=wait_ms)
    LOG.info(
        "tx rejected",
        extra={
            "tx_id": outcome.tx_id.hex() if outcome.tx_id else None,
            "reason": outcome.reason_code,
        },
    )
    extra: dict[str, object] = {} if outcome.tx_id is None else {"id": outcome.tx_id.hex()}
    raise ApiError(outcome.reason_code, outcome.message, extra=extra)


def status_word(status: TxStatus) -> str:
    """A duplicate's ``status``: ``status_view``'s word, ``pending`` for one the node
    does not know yet (between the mempool and a block). Not taken from
    ``status_view``: a committed tx's view reads and decodes its block's
    certificate, which this answer does not carry (docs/performance.md)."""
    if isinstance(status, Committed):
        return "committed"
    if isinstance(status, TxRejectedStatus):
        return "rejected"
    return "pending"


def stored_certificate_view(services: NodeServices, height: int) -> Json | None:
    """The view of the commit certificate stored at ``height``."""
    return certificate_view(services.store.certificate_at(height) or b"")


def status_view(
    status: TxStatus,
    services: NodeServices,
    certificate_at: Callable[[int], Json | None] | None = None,
) -> Json:
    """``certificate_at(height)``: the committed tx's certificate view, when the caller
    keeps one (``node.api.events``); else read and decoded from the store."""
    if isinstance(status, Pending):
        return {"id": status.tx_id.hex(), "status": "pending"}
    if isinstance(status, Committed):
        height = status.height
        return {
            "id": status.tx_id.hex(),
            "status": "committed",
            "height": height,
            "index": status.index,
            "block_hash": status.block_hash.hex(),
            "certificate": (
                stored_certificate_view(services, height)
                if certificate_at is None
                else certificate_at(height)
            ),
        }
    if isinstance(status, TxRejectedStatus):
        return {
            "id": status.tx_id.hex(),
            "status": "rejected",
            "reason": status.reason_code,
            "height": status.height,
        }
    raise ApiError(ApiCode.TX_NOT_FOUND, "this node knows no tx with that id")


async def submit_tx(request: web.Request) -> web.Response:
    check_known_params(request.query, frozenset())
    content_type, raw = await _body(request)
    tx_bytes = raw if content_type == MSGPACK else _base64_tx(_json_body(raw).get("tx"), "tx")
    services = services_of(request)
    # Shielded: a client that hangs up must not cut an admission off halfway.
    outcome = await asyncio.shield(services.submit(tx_bytes))
    if isinstance(outcome, Accepted):
        LOG.info("tx admitted", extra={"tx_id": outcome.tx_id.hex()})
    view = outcome_view(outcome, services)
    return web.json_response(view, status=202)


def _batch_txs(content_type: str, raw: bytes, limit: int) -> list[bytes]:
    """The batch's txs; the count is checked before any item is decoded (a 1 MiB
    body holds 350,000 empty items, each a base64 decode or a msgpack object)."""
    if content_type == JSON:
        txs = _json_body(raw).get("txs")
        if not isinstance(txs, list):
            raise ApiError(ApiCode.INVALID_JSON, 'body must be {"txs": [base64, ...]}')
        _check_batch_count(len(txs), limit)
        return [_base64_tx(tx, f"txs[{i}]") for i, tx in enumerate(txs)]
    try:
        txs = msgpack.unpackb(
            raw, raw=True, use_list=True, strict_map_key=True, max_array_len=limit
        )
    except ValueError as exc:
        if "max_array_len" in str(exc):  # msgpack's words, pinned by a test
            _check_batch_count(limit + 1, limit)
        raise ApiError(Reason.MALFORMED, "body is not a msgpack array of tx bytes") from None
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        raise ApiError(Reason.MALFORMED, "body is not a msgpack array of tx bytes") from None
    if not isinstance(txs, list) or not all(isinstance(tx, bytes) for tx in txs):
        raise ApiError(Reason.MALFORMED, "body is not a msgpack array of tx bytes")
    return [bytes(tx) for tx in txs]


def _check_batch_count(count: int, limit: int) -> None:
    if count == 0:
        raise ApiError(ApiCode.BATCH_EMPTY, f"a batch holds 1 to {limit} txs, this one none")
    if count > limit:
        raise ApiError(ApiCode.BATCH_TOO_LARGE, f"a batch holds 1 to {limit} txs")


async def submit_batch(request: web.Request) -> web.Response:
    """Up to ``max_batch_txs`` txs; each gets its own result, in order."""
    check_known_params(request.query, frozenset())
    content_type, raw = await _body(request)
    limit = settings_of(request).max_batch_txs
    txs = _batch_txs(content_type, raw, limit)
    _check_batch_count(len(txs), limit)
    services = services_of(request)
    services.check_ahead(txs)  # the batch's signatures in one check
    # All admissions at once, in the order sent, so the batch's range proofs share a
    # proof window instead of waiting one window each; shielded, so a client that
    # hangs up does not cut an admission short.
    outcomes = await asyncio.shield(services.submit_many(txs))
    results: list[Json] = []
    admitted: list[bytes] = []
    duplicates = busy = failed = 0
    each_admitted = LOG.isEnabledFor(logging.DEBUG)
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            results.append(_failed_item(outcome))
            failed += 1
            continue
        if isinstance(outcome, Accepted):
            admitted.append(outcome.tx_id)
            if each_admitted:
                LOG.debug("tx admitted", extra={"tx_id": outcome.tx_id.hex()})
        duplicates += isinstance(outcome, Duplicate)
        busy += isinstance(outcome, Busy)
        try:
            results.append(outcome_view(outcome, services))
        except ApiError as error:
            results.append(error.body())
    LOG.info(
        "tx batch",
        extra={
            "txs": len(txs),
            "admitted": len(admitted),
            "duplicates": duplicates,
            "busy": busy,
            "rejected": len(txs) - len(admitted) - duplicates - busy - failed,
            "first_admitted_id": admitted[0].hex() if admitted else None,
        },
    )
    return web.json_response({"results": results})


def _failed_item(exception: Exception) -> Json:
    """One item whose admission raised: a bug in the node, answered as that item's
    ``INTERNAL`` (the others keep their results) and logged like the middleware's."""
    request_id = REQUEST_ID.get()
    LOG.error(
        "internal error",
        exc_info=exception,
        extra={"request_id": request_id, "path": "/v1/txs:batch"},
    )
    return error_body(ApiCode.INTERNAL, f"internal error, request id {request_id}")


async def get_tx(request: web.Request) -> web.Response:
    """A tx's status; ``?wait=commit&timeout_ms=`` waits (up to the cap) for a verdict."""
    query = request.query
    check_known_params(query, frozenset({"wait", "timeout_ms"}))
    tx_id = parse_hex(request.match_info["tx_id"], TX_ID_BYTES, "tx id")
    services = services_of(request)
    wait = query.get("wait")
    if wait is None:
        if "timeout_ms" in query:
            raise ApiError(ApiCode.INVALID_PARAMETER, "timeout_ms needs wait=commit")
        status = services.tx_status(tx_id)
    elif wait == "commit":
        cap = settings_of(request).max_wait_ms
        timeout_ms = parse_int(query.get("timeout_ms", str(cap)), "timeout_ms", low=0, high=cap)
        status = await services.wait_for_commit(tx_id, timeout_ms / 1000)
    else:
        raise ApiError(ApiCode.INVALID_PARAMETER, "wait must be 'commit'")
    if isinstance(status, Unknown):
        raise ApiError(ApiCode.TX_NOT_FOUND, "this node knows no tx with that id")
    return web.json_response(status_view(status, services))
