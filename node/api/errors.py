"""The API's errors: stable codes, their HTTP statuses, and the one error middleware.

Every error body is ``{"error": {"code": "<STABLE_CODE>", "message": "..."}}``.
A code is either a ``ledger.reasons.Reason`` value (a tx the ledger refused),
a ``node.services`` busy code, or an ``ApiCode`` below (the request itself is
wrong). Codes are part of the protocol: never rename or reuse one.

Client input never yields a 5xx: handlers raise ``ApiError`` for what a
client got wrong, and aiohttp's own 4xx (unknown route, wrong method, body too
large) are rewritten into the same shape. Only an unexpected exception, a bug
in this node, becomes a generic 500 ``INTERNAL``, logged with its request id
and never echoed to the client.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Final

from aiohttp import web

from ledger.reasons import Reason
from node.logging import REQUEST_ID
from node.services import BUSY_MEMPOOL_FULL, BUSY_RATE_LIMITED, NODE_STOPPED

LOG = logging.getLogger("veil.api")
REQUEST_ID_HEADER: Final = "X-Request-Id"


class ApiCode(StrEnum):
    """Errors in the request itself (not a ledger verdict on a tx)."""

    INVALID_JSON = "INVALID_JSON"
    """The body is not the JSON object the route takes."""
    INVALID_BASE64 = "INVALID_BASE64"
    """A ``tx`` field is not standard base64."""
    INVALID_HEX = "INVALID_HEX"
    """A path or query id is not lowercase hex of the right length."""
    INVALID_PARAMETER = "INVALID_PARAMETER"
    """A query parameter is out of range or unknown (pagination, ``wait``, ``timeout_ms``,
    ``format``)."""
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    """``POST`` bodies are ``application/msgpack`` or ``application/json``, with no
    ``Content-Encoding``."""
    INVALID_BODY = "INVALID_BODY"
    """The body could not be read: its transfer framing (chunks) is malformed."""
    MALFORMED_HTTP = "MALFORMED_HTTP"
    """aiohttp's parser refused the request before the API saw it: a bad request
    line, a header over 8 KiB, a bad ``Content-Length`` (``node.api.runner``)."""
    BODY_TOO_LARGE = "BODY_TOO_LARGE"
    """The body exceeds the node's ``max_body_bytes``."""
    BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
    """``POST /v1/txs:batch`` with more txs than ``max_batch_txs``."""
    BATCH_EMPTY = "BATCH_EMPTY"
    """``POST /v1/txs:batch`` with no txs: a bad request, not a size limit."""
    NOT_FOUND = "NOT_FOUND"
    """No such route."""
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    TX_NOT_FOUND = "TX_NOT_FOUND"
    BLOCK_NOT_FOUND = "BLOCK_NOT_FOUND"
    OUTPUT_NOT_FOUND = "OUTPUT_NOT_FOUND"
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
    LOAN_NOT_FOUND = "LOAN_NOT_FOUND"
    """No loan with that id at the height asked (the tip by default)."""
    HEIGHT_NOT_RETAINED = "HEIGHT_NOT_RETAINED"
    """A ``height`` above the tip or below the oldest state the node keeps (docs/loans.md)."""
    UNHEALTHY = "UNHEALTHY"
    """``/healthz``: a check failed (the body lists which)."""
    TOO_MANY_SUBSCRIBERS = "TOO_MANY_SUBSCRIBERS"
    """``/v1/events``: the node already has ``[api] max_event_subscribers`` open; a
    busy answer (503 with ``Retry-After``), refused before the WebSocket handshake."""
    INTERNAL = "INTERNAL"
    """A bug in this node; the log has the details under the request id."""


_API_STATUS: Final[dict[ApiCode, int]] = {
    ApiCode.INVALID_JSON: 400,
    ApiCode.INVALID_BASE64: 400,
    ApiCode.INVALID_HEX: 400,
    ApiCode.INVALID_PARAMETER: 400,
    ApiCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ApiCode.INVALID_BODY: 400,
    ApiCode.MALFORMED_HTTP: 400,
    ApiCode.BODY_TOO_LARGE: 413,
    ApiCode.BATCH_TOO_LARGE: 413,
    ApiCode.BATCH_EMPTY: 400,
    ApiCode.NOT_FOUND: 404,
    ApiCode.METHOD_NOT_ALLOWED: 405,
    ApiCode.TX_NOT_FOUND: 404,
    ApiCode.BLOCK_NOT_FOUND: 404,
    ApiCode.OUTPUT_NOT_FOUND: 404,
    ApiCode.ACCOUNT_NOT_FOUND: 404,
    ApiCode.LOAN_NOT_FOUND: 404,
    ApiCode.HEIGHT_NOT_RETAINED: 410,
    ApiCode.UNHEALTHY: 503,
    ApiCode.TOO_MANY_SUBSCRIBERS: 503,
    ApiCode.INTERNAL: 500,
}

# Ledger verdicts: undecodable bytes are a bad request; a conflict with the chain
# (spent, registered, replayed) is 409; everything else is a well-formed tx the
# rules refuse, 422.
_BAD_REQUEST_REASONS: Final = frozenset({Reason.MALFORMED, Reason.UNKNOWN_KIND})
_CONFLICT_REASONS: Final = frozenset(
    {Reason.DOUBLE_SPEND, Reason.ALREADY_REGISTERED, Reason.DUPLICATE_TX, Reason.REPLAYED}
)
_BUSY_STATUS: Final[dict[str, int]] = {
    BUSY_MEMPOOL_FULL: 503,
    BUSY_RATE_LIMITED: 429,
    NODE_STOPPED: 503,
}


def reason_status(reason: Reason) -> int:
    """The HTTP status of a tx the ledger refused with ``reason``."""
    if reason in _BAD_REQUEST_REASONS:
        return 400
    if reason is Reason.TOO_LARGE:
        return 413
    if reason in _CONFLICT_REASONS:
        return 409
    return 422


def status_of_code(code: str) -> int:
    """The HTTP status of any stable code; an unknown code is a bug (500)."""
    if code in _BUSY_STATUS:
        return _BUSY_STATUS[code]
    if code in Reason.__members__:
        return reason_status(Reason(code))
    if code in ApiCode.__members__:
        return _API_STATUS[ApiCode(code)]
    return 500


def all_codes() -> frozenset[str]:
    """Every code the API can answer with: the "every code has a case" tests use it."""
    return frozenset(ApiCode) | frozenset(Reason) | frozenset(_BUSY_STATUS)


class ApiError(Exception):
    """A request the API refuses: raised by handlers, rendered by the middleware."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retry_after_ms: int | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = str(code)
        self.message = message
        self.status = status_of_code(code)
        self.retry_after_ms = retry_after_ms
        self.extra = extra or {}

    def body(self) -> dict[str, object]:
        """The JSON body: the envelope, with ``retry_after_ms`` in it when there is a
        wait, then ``extra`` (such as the tx ``id``)."""
        return error_body(self.code, self.message, self.retry_after_ms) | self.extra


def error_body(code: str, message: str, retry_after_ms: int | None = None) -> dict[str, object]:
    error: dict[str, object] = {"code": code, "message": message}
    if retry_after_ms is not None:
        error["retry_after_ms"] = retry_after_ms
    return {"error": error}


def retry_after_header(retry_after_ms: int) -> str:
    """``Retry-After`` counts whole seconds: the wait rounded up, at least 1."""
    return str(max(1, -(-retry_after_ms // 1000)))


def error_response(error: ApiError) -> web.Response:
    headers = {}
    if error.retry_after_ms is not None:
        headers["Retry-After"] = retry_after_header(error.retry_after_ms)
    return web.json_response(error.body(), status=error.status, headers=headers)


_AIOHTTP_CODES: Final[dict[int, tuple[ApiCode, str]]] = {
    404: (ApiCode.NOT_FOUND, "no such route"),
    405: (ApiCode.METHOD_NOT_ALLOWED, "method not allowed on this route"),
    413: (ApiCode.BODY_TOO_LARGE, "request body too large"),
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id; turn every failure into the one error shape."""
    request_id = uuid.uuid4().hex
    token = REQUEST_ID.set(request_id)
    try:
        response = await handler(request)
    except ApiError as error:
        response = error_response(error)
    except web.HTTPException as http_error:
        if http_error.status < 400:
            raise
        code, message = _AIOHTTP_CODES.get(
            http_error.status, (ApiCode.INVALID_PARAMETER, "request refused")
        )
        if http_error.status not in _AIOHTTP_CODES:
            LOG.warning(
                "unmapped HTTP error %s", http_error.status, extra={"request_id": request_id}
            )
        response = error_response(ApiError(code, message))
    except Exception:
        LOG.exception("internal error", extra={"request_id": request_id, "path": request.path})
        response = error_response(
            ApiError(ApiCode.INTERNAL, f"internal error, request id {request_id}")
        )
    finally:
        REQUEST_ID.reset(token)
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
