"""The API as a table of (request, status, code), like tests/spec's ``TX_CASES``.

Each case is one request against a node over the committed chain of
``chain_fixture``; the meta-tests demand a case for every API and busy code
and for the ledger verdicts issue 9 names, and that no client input reaches
the 500 path.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from unittest import mock

import msgpack
import pytest
from aiohttp import web
from aiohttp.http_parser import HttpRequestParserPy
from aiohttp.test_utils import TestClient, TestServer

from ledger.build import build_attest
from ledger.reasons import Reason
from node.api import create_app, events
from node.api.context import SETTINGS_KEY
from node.api.errors import ApiCode, all_codes, reason_status
from node.services import BUSY_MEMPOOL_FULL, BUSY_RATE_LIMITED, NODE_STOPPED
from tests.api.chain_fixture import ApiChain
from tests.api.in_process_node import InProcessNode

MSGPACK = {"Content-Type": "application/msgpack"}
JSON = {"Content-Type": "application/json"}
MAX_BODY_BYTES = 256 * 1024
MAX_BATCH_TXS = 4


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bytes | None = None
    """A chunked body written verbatim (malformed if need be) over a plain socket,
    once the server has parsed the head; ``body`` is then unused."""


@dataclass(frozen=True)
class Case:
    name: str
    request: Callable[[ApiChain], Request]
    status: int
    code: str | None
    node: Callable[[InProcessNode], None] = lambda node: None
    python_parser: bool = False
    """Serve with aiohttp's pure-Python HTTP parser (what a platform without its C
    extension runs): it is the one that hands a broken chunked body to the handler."""
    app: Callable[[web.Application], None] = lambda app: None


def post_tx(raw: Callable[[ApiChain], bytes]) -> Callable[[ApiChain], Request]:
    return lambda c: Request("POST", "/v1/txs", raw(c), MSGPACK)


def post_json(path: str, body: bytes, **headers: str) -> Callable[[ApiChain], Request]:
    return lambda c: Request("POST", path, body, JSON | headers)


def post_chunked(path: str, chunked: bytes) -> Callable[[ApiChain], Request]:
    return lambda c: Request("POST", path, headers=JSON, chunked=chunked)


def get(path: Callable[[ApiChain], str]) -> Callable[[ApiChain], Request]:
    return lambda c: Request("GET", path(c))


def _bogus(path: str, chain: ApiChain) -> str:
    return f"{path}?bogus=1"


def json_body(value: object) -> bytes:
    return json.dumps(value).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def bad_signature(c: ApiChain) -> bytes:
    tx = c.attest().tx
    return tx.__class__(
        tx.kind, tx.body, bytes([tx.signature[0] ^ 1]) + tx.signature[1:], tx.witness
    ).encode()


def stopped(node: InProcessNode) -> None:
    node.stopped = True


def full(node: InProcessNode) -> None:
    node.mempool_capacity_txs = 0


def rate_limited(node: InProcessNode) -> None:
    node.max_pending_per_signer = 0


def unhealthy(node: InProcessNode) -> None:
    node.connected_peers = 1
    node.wal_latched = True


def no_event_subscribers(app: web.Application) -> None:
    """A node at its subscriber limit."""
    app[events.FANOUT_KEY].subscribers = app[SETTINGS_KEY].max_event_subscribers


WEBSOCKET_UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


ZERO_ID = "00" * 32
DEEP_JSON = b"[" * 100_000
"""Deeper than the interpreter's stack: ``json.loads`` raises RecursionError."""

CASES: tuple[Case, ...] = (
    # --- POST /v1/txs: accepted -------------------------------------------------------
    Case("valid attest as msgpack", post_tx(lambda c: c.attest().encode()), 202, None),
    Case(
        "valid issue as JSON base64",
        lambda c: Request("POST", "/v1/txs", json_body({"tx": b64(c.fresh_issue.encode())}), JSON),
        202,
        None,
    ),
    Case("committed tx again: idempotent", post_tx(lambda c: c.issue.encode()), 202, None),
    # --- POST /v1/txs: the ledger refuses -----------------------------------------------
    Case(
        "tampered range proof",
        post_tx(lambda c: c.tampered_proof.encode()),
        422,
        Reason.BAD_RANGE_PROOF,
    ),
    Case("double spend", post_tx(lambda c: c.double_spend.encode()), 409, Reason.DOUBLE_SPEND),
    Case(
        "output to an unregistered key",
        post_tx(lambda c: c.to_unregistered.encode()),
        422,
        Reason.UNREGISTERED,
    ),
    Case(
        "attest by a non-member",
        post_tx(
            lambda c: build_attest(
                c.world.mallory.identity, c.world.chain_id, "x", b"\x01" * 32, nonce=1
            ).encode()
        ),
        422,
        Reason.NOT_MEMBER,
    ),
    Case("bad signature", post_tx(bad_signature), 422, Reason.BAD_SIGNATURE),
    Case("replayed nonce", post_tx(lambda c: c.attest(nonce=0).encode()), 409, Reason.REPLAYED),
    Case(
        "nonce too far",
        post_tx(lambda c: c.attest(nonce=1 << 20).encode()),
        422,
        Reason.NONCE_TOO_FAR,
    ),
    Case("garbage bytes", post_tx(lambda c: b"\xc1garbage"), 400, Reason.MALFORMED),
    Case("empty body", post_tx(lambda c: b""), 400, Reason.MALFORMED),
    Case("tx above max_tx_bytes", post_tx(lambda c: b"\x00" * (65 * 1024)), 413, Reason.TOO_LARGE),
    Case(
        "body above max_body_bytes",
        post_tx(lambda c: b"\x00" * (MAX_BODY_BYTES + 1)),
        413,
        ApiCode.BODY_TOO_LARGE,
    ),
    # --- POST /v1/txs: the request is wrong ---------------------------------------------
    Case(
        "wrong content type",
        lambda c: Request("POST", "/v1/txs", c.attest().encode(), {"Content-Type": "text/plain"}),
        415,
        ApiCode.UNSUPPORTED_MEDIA_TYPE,
    ),
    Case(
        "no content type",
        lambda c: Request("POST", "/v1/txs", c.attest().encode()),
        415,
        ApiCode.UNSUPPORTED_MEDIA_TYPE,
    ),
    Case(
        "JSON not an object",
        lambda c: Request("POST", "/v1/txs", b"[1]", JSON),
        400,
        ApiCode.INVALID_JSON,
    ),
    Case(
        "JSON unparsable",
        lambda c: Request("POST", "/v1/txs", b"{", JSON),
        400,
        ApiCode.INVALID_JSON,
    ),
    Case(
        "JSON tx not a string",
        lambda c: Request("POST", "/v1/txs", b'{"tx": 5}', JSON),
        400,
        ApiCode.INVALID_JSON,
    ),
    Case(
        "JSON tx not base64",
        lambda c: Request("POST", "/v1/txs", b'{"tx": "%%%"}', JSON),
        400,
        ApiCode.INVALID_BASE64,
    ),
    Case("JSON nested too deep", post_json("/v1/txs", DEEP_JSON), 400, ApiCode.INVALID_JSON),
    Case(
        "batch JSON nested too deep",
        post_json("/v1/txs:batch", DEEP_JSON),
        400,
        ApiCode.INVALID_JSON,
    ),
    Case(
        "gzip Content-Encoding, not compressed",
        post_json("/v1/txs", b'{"tx": "AA=="}', **{"Content-Encoding": "gzip"}),
        415,
        ApiCode.UNSUPPORTED_MEDIA_TYPE,
    ),
    Case(
        "batch with deflate Content-Encoding, not compressed",
        post_json("/v1/txs:batch", b'{"txs": ["AA=="]}', **{"Content-Encoding": "deflate"}),
        415,
        ApiCode.UNSUPPORTED_MEDIA_TYPE,
    ),
    Case(
        "chunk size not hex",
        post_chunked("/v1/txs", b"zz\r\n{}\r\n0\r\n\r\n"),
        400,
        ApiCode.INVALID_BODY,
        python_parser=True,
    ),
    Case(
        "batch chunk size not hex",
        post_chunked("/v1/txs:batch", b"2\r\n{}\r\nzz\r\n"),
        400,
        ApiCode.INVALID_BODY,
        python_parser=True,
    ),
    # --- POST /v1/txs: the node is busy -------------------------------------------------
    Case("mempool full", post_tx(lambda c: c.attest().encode()), 503, BUSY_MEMPOOL_FULL, full),
    Case(
        "sender rate limited",
        post_tx(lambda c: c.attest().encode()),
        429,
        BUSY_RATE_LIMITED,
        rate_limited,
    ),
    Case("node stopped", post_tx(lambda c: c.attest().encode()), 503, NODE_STOPPED, stopped),
    # --- POST /v1/txs:batch ---------------------------------------------------------------
    Case(
        "batch of two, JSON",
        lambda c: Request(
            "POST",
            "/v1/txs:batch",
            json_body({"txs": [b64(c.attest().encode()), b64(b"\x00")]}),
            JSON,
        ),
        200,
        None,
    ),
    Case(
        "batch too large",
        lambda c: Request(
            "POST",
            "/v1/txs:batch",
            msgpack.packb([c.attest().encode()] * (MAX_BATCH_TXS + 1)),
            MSGPACK,
        ),
        413,
        ApiCode.BATCH_TOO_LARGE,
    ),
    # The count is checked before any item is decoded: items that are not txs at all
    # still get BATCH_TOO_LARGE (they got MALFORMED, after every item was decoded).
    Case(
        "batch too large, items not decoded",
        lambda c: Request(
            "POST", "/v1/txs:batch", msgpack.packb([0] * (MAX_BATCH_TXS + 1)), MSGPACK
        ),
        413,
        ApiCode.BATCH_TOO_LARGE,
    ),
    Case(
        "JSON batch too large, items not decoded",
        lambda c: Request(
            "POST", "/v1/txs:batch", json_body({"txs": ["!"] * (MAX_BATCH_TXS + 1)}), JSON
        ),
        413,
        ApiCode.BATCH_TOO_LARGE,
    ),
    Case(
        "empty batch",
        lambda c: Request("POST", "/v1/txs:batch", b'{"txs": []}', JSON),
        400,
        ApiCode.BATCH_EMPTY,
    ),
    Case(
        "empty msgpack batch",
        lambda c: Request("POST", "/v1/txs:batch", msgpack.packb([]), MSGPACK),
        400,
        ApiCode.BATCH_EMPTY,
    ),
    Case(
        "batch not a msgpack array",
        lambda c: Request("POST", "/v1/txs:batch", b"\xc1", MSGPACK),
        400,
        Reason.MALFORMED,
    ),
    Case(
        "batch JSON without txs",
        lambda c: Request("POST", "/v1/txs:batch", b"{}", JSON),
        400,
        ApiCode.INVALID_JSON,
    ),
    # --- GET /v1/txs/{id} ----------------------------------------------------------------
    Case("committed tx", get(lambda c: f"/v1/txs/{c.transfer.tx_id.hex()}"), 200, None),
    Case(
        "committed tx, wait", get(lambda c: f"/v1/txs/{c.issue.tx_id.hex()}?wait=commit"), 200, None
    ),
    Case("unknown tx", get(lambda c: f"/v1/txs/{ZERO_ID}"), 404, ApiCode.TX_NOT_FOUND),
    Case("tx id not hex", get(lambda c: "/v1/txs/" + "zz" * 32), 400, ApiCode.INVALID_HEX),
    Case("tx id uppercase", get(lambda c: "/v1/txs/" + "AB" * 32), 400, ApiCode.INVALID_HEX),
    Case("tx id short", get(lambda c: "/v1/txs/abcd"), 400, ApiCode.INVALID_HEX),
    Case(
        "wait not commit",
        get(lambda c: f"/v1/txs/{ZERO_ID}?wait=forever"),
        400,
        ApiCode.INVALID_PARAMETER,
    ),
    Case(
        "timeout above the cap",
        get(lambda c: f"/v1/txs/{ZERO_ID}?wait=commit&timeout_ms=30001"),
        400,
        ApiCode.INVALID_PARAMETER,
    ),
    Case(
        "timeout negative",
        get(lambda c: f"/v1/txs/{ZERO_ID}?wait=commit&timeout_ms=-1"),
        400,
        ApiCode.INVALID_PARAMETER,
    ),
    Case(
        "timeout without wait",
        get(lambda c: f"/v1/txs/{ZERO_ID}?timeout_ms=5"),
        400,
        ApiCode.INVALID_PARAMETER,
    ),
    # Every route refuses a parameter it does not know, these three too (they did not).
    *(
        Case(
            f"{path} unknown parameter",
            get(functools.partial(_bogus, path)),
            400,
            ApiCode.INVALID_PARAMETER,
        )
        for path in ("/healthz", "/metrics", "/openapi.json")
    ),
    # --- blocks -----------------------------------------------------------------------------
    Case("block 2", get(lambda c: "/v1/blocks/2"), 200, None),
    Case("genesis block", get(lambda c: "/v1/blocks/0"), 200, None),
    Case("latest block raw", get(lambda c: "/v1/blocks/latest?format=raw"), 200, None),
    Case("block above the tip", get(lambda c: "/v1/blocks/3"), 404, ApiCode.BLOCK_NOT_FOUND),
    Case("height negative", get(lambda c: "/v1/blocks/-1"), 400, ApiCode.INVALID_PARAMETER),
    Case("height huge", get(lambda c: "/v1/blocks/" + "9" * 40), 400, ApiCode.INVALID_PARAMETER),
    Case(
        "unknown format", get(lambda c: "/v1/blocks/1?format=xml"), 400, ApiCode.INVALID_PARAMETER
    ),
    # --- outputs, accounts, chain -----------------------------------------------------------
    Case(
        "alice's outputs",
        get(lambda c: f"/v1/outputs?owner={c.world.alice.key.hex()}&limit=1"),
        200,
        None,
    ),
    Case(
        "spent output with memos",
        get(lambda c: f"/v1/outputs/{c.issue.output_ids()[0].hex()}"),
        200,
        None,
    ),
    Case(
        "unknown output", get(lambda c: "/v1/outputs/" + "00" * 33), 404, ApiCode.OUTPUT_NOT_FOUND
    ),
    Case("output id bad hex", get(lambda c: "/v1/outputs/xyz"), 400, ApiCode.INVALID_HEX),
    Case("outputs without owner", get(lambda c: "/v1/outputs"), 400, ApiCode.INVALID_PARAMETER),
    Case("outputs owner bad hex", get(lambda c: "/v1/outputs?owner=12"), 400, ApiCode.INVALID_HEX),
    Case(
        "page limit zero",
        get(lambda c: f"/v1/outputs?owner={ZERO_ID}&limit=0"),
        400,
        ApiCode.INVALID_PARAMETER,
    ),
    Case(
        "page limit not a number",
        get(lambda c: f"/v1/outputs?owner={ZERO_ID}&limit=ten"),
        400,
        ApiCode.INVALID_PARAMETER,
    ),
    Case(
        "page cursor bad hex",
        get(lambda c: f"/v1/outputs?owner={ZERO_ID}&after=00"),
        400,
        ApiCode.INVALID_HEX,
    ),
    Case("account", get(lambda c: f"/v1/accounts/{c.world.alice.key.hex()}"), 200, None),
    Case(
        "member bank account", get(lambda c: f"/v1/accounts/{c.world.bank_a.key.hex()}"), 200, None
    ),
    Case(
        "unregistered account",
        get(lambda c: f"/v1/accounts/{c.world.mallory.key.hex()}"),
        404,
        ApiCode.ACCOUNT_NOT_FOUND,
    ),
    Case("account key bad hex", get(lambda c: "/v1/accounts/nothex"), 400, ApiCode.INVALID_HEX),
    # --- loans ----------------------------------------------------------------------------
    Case(
        "borrower's loans at the tip",
        get(lambda c: f"/v1/borrowers/{c.world.alice.key.hex()}/loans"),
        200,
        None,
    ),
    Case(
        "borrower's loans at height 1",
        get(lambda c: f"/v1/borrowers/{c.world.alice.key.hex()}/loans?height=1"),
        200,
        None,
    ),
    Case(
        "borrower key bad hex", get(lambda c: "/v1/borrowers/xyz/loans"), 400, ApiCode.INVALID_HEX
    ),
    Case(
        "borrower's loans above the tip",
        get(lambda c: f"/v1/borrowers/{c.world.alice.key.hex()}/loans?height=3"),
        410,
        ApiCode.HEIGHT_NOT_RETAINED,
    ),
    Case(
        "borrower's loans, height not a number",
        get(lambda c: f"/v1/borrowers/{c.world.alice.key.hex()}/loans?height=tip"),
        400,
        ApiCode.INVALID_PARAMETER,
    ),
    Case("loan", get(lambda c: f"/v1/loans/{c.loan.tx_id.hex()}"), 200, None),
    Case(
        "loan's disbursement output",
        get(lambda c: f"/v1/outputs/{c.loan.output_ids()[0].hex()}"),
        200,
        None,
    ),
    Case("unknown loan", get(lambda c: f"/v1/loans/{ZERO_ID}"), 404, ApiCode.LOAN_NOT_FOUND),
    Case(
        "loan before its origination",
        get(lambda c: f"/v1/loans/{c.loan.tx_id.hex()}?height=1"),
        404,
        ApiCode.LOAN_NOT_FOUND,
    ),
    Case("loan id bad hex", get(lambda c: "/v1/loans/" + "0" * 63), 400, ApiCode.INVALID_HEX),
    Case(
        "loan above the tip",
        get(lambda c: f"/v1/loans/{c.loan.tx_id.hex()}?height=99"),
        410,
        ApiCode.HEIGHT_NOT_RETAINED,
    ),
    Case(
        "loan, unknown parameter",
        get(lambda c: f"/v1/loans/{c.loan.tx_id.hex()}?at=2"),
        400,
        ApiCode.INVALID_PARAMETER,
    ),
    Case("chain", get(lambda c: "/v1/chain"), 200, None),
    Case("validators", get(lambda c: "/v1/validators"), 200, None),
    Case("status", get(lambda c: "/v1/status"), 200, None),
    Case(
        "unknown query parameter",
        get(lambda c: "/v1/chain?verbose=1"),
        400,
        ApiCode.INVALID_PARAMETER,
    ),
    # --- operations ---------------------------------------------------------------------------
    Case("healthy", get(lambda c: "/healthz"), 200, None),
    Case("unhealthy", get(lambda c: "/healthz"), 503, ApiCode.UNHEALTHY, unhealthy),
    Case(
        "events, subscriber limit reached",
        lambda c: Request("GET", "/v1/events", headers=WEBSOCKET_UPGRADE),
        503,
        ApiCode.TOO_MANY_SUBSCRIBERS,
        app=no_event_subscribers,
    ),
    Case("metrics", get(lambda c: "/metrics"), 200, None),
    Case("openapi", get(lambda c: "/openapi.json"), 200, None),
    Case("unknown route", get(lambda c: "/v2/anything"), 404, ApiCode.NOT_FOUND),
    Case("wrong method", lambda c: Request("DELETE", "/v1/chain"), 405, ApiCode.METHOD_NOT_ALLOWED),
)

NOT_CLIENT_REACHABLE = {ApiCode.INTERNAL}
"""Only a bug in the node answers INTERNAL: ``test_an_unexpected_error_is_a_generic_500``."""
ANSWERED_BY_THE_SERVER = {ApiCode.MALFORMED_HTTP}
"""Refused by the node's HTTP server before the app sees the request, so not through
``TestServer``: ``tests/unit/test_node_http_protocol_log.py`` sends them to a real node."""
ISSUE_VERDICTS = {
    Reason.BAD_RANGE_PROOF,
    Reason.DOUBLE_SPEND,
    Reason.UNREGISTERED,
    Reason.MALFORMED,
    Reason.TOO_LARGE,
}


Answer = tuple[int, dict[str, object] | None, dict[str, str]]


@contextlib.contextmanager
def http_parser(python: bool) -> Iterator[None]:
    if not python:
        yield
        return
    with mock.patch("aiohttp.web_protocol.HttpRequestParser", HttpRequestParserPy):
        yield


async def answer(chain: ApiChain, case: Case) -> Answer:
    node = InProcessNode(chain.world, chain.store)
    case.node(node)
    app = create_app(node, max_body_bytes=MAX_BODY_BYTES, max_batch_txs=MAX_BATCH_TXS)
    case.app(app)
    request = case.request(chain)
    with http_parser(case.python_parser):
        if request.chunked is not None:
            return await chunked_answer(TestServer(app), request, request.chunked)
        return await client_answer(TestClient(TestServer(app)), request)


async def chunked_answer(server: TestServer, request: Request, chunked: bytes) -> Answer:
    """Send the head with ``Expect: 100-continue`` and the body only after the 100:
    the server is then in the handler, reading the body, when the bad chunk comes."""
    async with server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        head = f"{request.method} {request.path} HTTP/1.1\r\nHost: test\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
        head += "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n"
        writer.write(head.encode() + b"\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(
            b"HTTP/1.1 100"
        )
        writer.write(chunked)
        raw = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    headers = dict(line.decode().split(": ", 1) for line in header_block.split(b"\r\n") if line)
    is_json = headers.get("Content-Type", "").startswith("application/json")
    return int(status_line.split()[1]), json.loads(body) if is_json else None, headers


async def client_answer(client: TestClient, request: Request) -> Answer:  # type: ignore[type-arg]
    async with client:
        response = await client.request(
            request.method, request.path, data=request.body or None, headers=request.headers
        )
        raw = await response.read()
        body = json.loads(raw) if response.content_type == "application/json" else None
        return response.status, body, dict(response.headers)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_api_case(api_chain: ApiChain, case: Case, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="veil"):
        status, body, headers = await answer(api_chain, case)
    assert status == case.status, body
    # Client input never reaches the 500 path, nor an unmapped aiohttp error; nor
    # does aiohttp's server log an error for it (it did for a body it failed to
    # decompress). Its pure-Python parser logs one after a broken chunk, not ours.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("veil")] == []
    if not case.python_parser:
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    if case.code is None:
        assert body is None or "error" not in body
        return
    assert body is not None and body["error"]["code"] == case.code  # type: ignore[index]
    assert isinstance(body["error"]["message"], str)  # type: ignore[index]
    if status in (429, 503) and case.code != ApiCode.UNHEALTHY:
        # The exact wait in the body, whole seconds rounded up in the header.
        wait_ms = body["error"]["retry_after_ms"]  # type: ignore[index]
        assert isinstance(wait_ms, int) and wait_ms > 0
        assert int(headers["Retry-After"]) == -(-wait_ms // 1000)


def test_every_api_and_busy_code_has_a_case() -> None:
    covered = {case.code for case in CASES}
    api_and_busy = all_codes() - set(Reason)
    assert api_and_busy - covered - NOT_CLIENT_REACHABLE - ANSWERED_BY_THE_SERVER == set()


def test_the_verdicts_issue_9_names_have_cases() -> None:
    assert ISSUE_VERDICTS - {case.code for case in CASES} == set()


def test_at_least_twice_as_many_error_cases_as_success_cases() -> None:
    errors = sum(1 for case in CASES if case.code is not None)
    assert errors >= 2 * (len(CASES) - errors)


@pytest.mark.parametrize("reason", list(Reason))
def test_every_ledger_reason_is_a_4xx(reason: Reason) -> None:
    assert 400 <= reason_status(reason) < 500
