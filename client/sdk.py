"""The Veil SDK: sync (``Client``) and async (``AsyncClient``) clients for every ``/v1`` route.

Both share one description of each request (``_Call``) and one way of reading
answers (``_read_answer``), so they cannot disagree. Every failure is a
``VeilApiError`` carrying a stable code: the node's (docs/api.md), or
``NODE_UNREACHABLE`` / ``TIMEOUT`` / ``BAD_RESPONSE`` for what the client saw.

Retries are only where repeating cannot change the outcome: reads, and tx
submission (the node's submit is idempotent by tx id). They happen on a busy
answer (429/503, honouring ``Retry-After``) and on a refused or reset
connection, with exponential back-off capped by ``RetryPolicy``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

import aiohttp

from client.api_types import (
    Account,
    BadResponseError,
    BatchItem,
    Block,
    BorrowerLoans,
    ChainInfo,
    Health,
    Json,
    Loan,
    NodeStatus,
    Output,
    OutputPage,
    TxStatus,
    Validator,
)

DEFAULT_TIMEOUT_S: Final = 10.0
NODE_WAIT_CAP_MS: Final = 30_000
"""The node's default ``max_wait_ms``: one long-poll never asks for more."""
RETRYABLE_STATUSES: Final = frozenset({429, 503})
T = TypeVar("T")


class VeilApiError(Exception):
    """Any failure talking to a node. ``code`` is stable; ``status`` is the HTTP
    status when the node answered; ``tx_id`` is set when a refused tx had one."""

    def __init__(
        self, code: str, message: str, *, status: int | None = None, tx_id: bytes | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.tx_id = tx_id


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    first_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def delay_s(self, attempt: int, retry_after_s: float | None) -> float:
        backoff = min(self.max_delay_s, self.first_delay_s * 2.0**attempt)
        if retry_after_s is None:
            return backoff
        return min(self.max_delay_s, max(backoff, retry_after_s))


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    content_type: str | None = None
    retry_safe: bool = True
    timeout_s: float | None = None
    raw: bool = False
    ok_statuses: frozenset[int] = field(default_factory=lambda: frozenset({200, 202}))

    def url(self, base_url: str) -> str:
        query = f"?{urllib.parse.urlencode(self.query)}" if self.query else ""
        return f"{base_url}{self.path}{query}"


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    retry_after_s: float | None
    body: bytes


def _retry_after(status: int, header: str | None, body: bytes) -> float | None:
    """Seconds a busy answer says to wait: its body's ``retry_after_ms`` (exact), else
    its ``Retry-After`` header (whole seconds, rounded up by the node)."""
    if status not in RETRYABLE_STATUSES:
        return None
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    exact = error.get("retry_after_ms") if isinstance(error, dict) else None
    if isinstance(exact, int) and not isinstance(exact, bool) and exact >= 0:
        return exact / 1000
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        return None


def _read_answer(call: _Call, answer: _Answer) -> Json | bytes:
    """The body of an accepted answer, or the node's error raised as ``VeilApiError``."""
    if answer.status in call.ok_statuses and call.raw:
        return answer.body
    try:
        parsed = json.loads(answer.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        parsed = None
    if answer.status in call.ok_statuses:
        if not isinstance(parsed, dict):
            raise VeilApiError("BAD_RESPONSE", "the node's answer is not a JSON object")
        return parsed
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        raw_id = parsed.get("id") if isinstance(parsed, dict) else None
        tx_id = _hex_or_none(raw_id)
        raise VeilApiError(
            str(error["code"]), str(error.get("message", "")), status=answer.status, tx_id=tx_id
        )
    raise VeilApiError(
        "BAD_RESPONSE", f"HTTP {answer.status} without an error body", status=answer.status
    )


def _hex_or_none(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _typed(parse: Callable[[Json], T], body: Json | bytes) -> T:
    if not isinstance(body, dict):
        raise VeilApiError("BAD_RESPONSE", "expected a JSON object")
    try:
        return parse(body)
    except BadResponseError as exc:
        raise VeilApiError("BAD_RESPONSE", str(exc)) from None


def _normalize(base_url: str) -> str:
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise VeilApiError("INVALID_NODE_URL", f"not an http(s) URL: {base_url!r}")
    return base_url.rstrip("/")


# --- one description per route, shared by both clients -------------------------------------


def _submit_call(tx_bytes: bytes) -> _Call:
    return _Call("POST", "/v1/txs", body=tx_bytes, content_type="application/msgpack")


def _batch_call(txs: list[bytes]) -> _Call:
    body = json.dumps({"txs": [base64.b64encode(tx).decode("ascii") for tx in txs]}).encode()
    return _Call("POST", "/v1/txs:batch", body=body, content_type="application/json")


def _tx_call(tx_id: bytes, wait_ms: int | None = None) -> _Call:
    query = () if wait_ms is None else (("wait", "commit"), ("timeout_ms", str(wait_ms)))
    # A long-poll needs more than the default socket timeout.
    timeout = None if wait_ms is None else DEFAULT_TIMEOUT_S + wait_ms / 1000
    return _Call("GET", f"/v1/txs/{tx_id.hex()}", query=query, timeout_s=timeout)


def _block_path(height: int | None) -> str:
    return "/v1/blocks/latest" if height is None else f"/v1/blocks/{height}"


def _outputs_call(owner: bytes, limit: int | None, after: bytes | None) -> _Call:
    query: list[tuple[str, str]] = [("owner", owner.hex())]
    if limit is not None:
        query.append(("limit", str(limit)))
    if after is not None:
        query.append(("after", after.hex()))
    return _Call("GET", "/v1/outputs", query=tuple(query))


def _height_query(height: int | None) -> tuple[tuple[str, str], ...]:
    return () if height is None else (("height", str(height)),)


def _loan_call(loan_id: bytes, height: int | None) -> _Call:
    return _Call("GET", f"/v1/loans/{loan_id.hex()}", query=_height_query(height))


def _borrower_call(borrower: bytes, height: int | None) -> _Call:
    path = f"/v1/borrowers/{borrower.hex()}/loans"
    return _Call("GET", path, query=_height_query(height))


def _batch_items(body: Json | bytes) -> list[BatchItem]:
    def parse(obj: Json) -> list[BatchItem]:
        results = obj.get("results")
        if not isinstance(results, list):
            raise BadResponseError("field 'results' is not a list")
        return [BatchItem.from_json(item) for item in results if isinstance(item, dict)]

    return _typed(parse, body)


def _validators(obj: Json) -> list[Validator]:
    items = obj.get("validators")
    if not isinstance(items, list):
        raise BadResponseError("field 'validators' is not a list")
    return [Validator.from_json(v) for v in items if isinstance(v, dict)]


_HEALTH_CALL: Final = _Call("GET", "/healthz", ok_statuses=frozenset({200, 503}))


# --- sync ---------------------------------------------------------------------------------


class Client:
    """A blocking client over the standard library (no event loop needed)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = _normalize(base_url)
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    def _once(self, call: _Call) -> _Answer:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in _normalize
            call.url(self.base_url), data=call.body, method=call.method
        )
        if call.content_type is not None:
            request.add_header("Content-Type", call.content_type)
        timeout = call.timeout_s or self.timeout_s
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return _Answer(response.status, None, response.read())
        except urllib.error.HTTPError as exc:
            body = exc.read()
            header = exc.headers.get("Retry-After")
            return _Answer(exc.code, _retry_after(exc.code, header, body), body)
        except TimeoutError:
            raise VeilApiError("TIMEOUT", f"no answer within {timeout:g} s") from None
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise VeilApiError(
                "NODE_UNREACHABLE", f"cannot reach {self.base_url}: {reason}"
            ) from None

    def _request(self, call: _Call) -> Json | bytes:
        attempts = self.retry.attempts if call.retry_safe else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                answer = self._once(call)
            except VeilApiError as exc:
                if last or exc.code != "NODE_UNREACHABLE":
                    raise
                self._sleep(self.retry.delay_s(attempt, None))
                continue
            if answer.status in RETRYABLE_STATUSES and not last and call is not _HEALTH_CALL:
                self._sleep(self.retry.delay_s(attempt, answer.retry_after_s))
                continue
            return _read_answer(call, answer)
        raise VeilApiError("NODE_UNREACHABLE", "no attempt made")  # attempts < 1

    def submit(self, tx_bytes: bytes) -> TxStatus:
        """Submit one encoded tx; resubmitting the same tx is safe (idempotent)."""
        return _typed(TxStatus.from_json, self._request(_submit_call(tx_bytes)))

    def submit_batch(self, txs: list[bytes]) -> list[BatchItem]:
        return _batch_items(self._request(_batch_call(txs)))

    def tx(self, tx_id: bytes) -> TxStatus:
        return _typed(TxStatus.from_json, self._request(_tx_call(tx_id)))

    def wait_for_commit(self, tx_id: bytes, timeout_s: float = 30.0) -> TxStatus:
        """The tx's status once committed or rejected, or its status at ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            wait_ms = min(remaining_ms, NODE_WAIT_CAP_MS)
            status = _typed(TxStatus.from_json, self._request(_tx_call(tx_id, wait_ms)))
            if status.final or remaining_ms <= wait_ms:
                return status

    def block(self, height: int | None = None) -> Block:
        return _typed(Block.from_json, self._request(_Call("GET", _block_path(height))))

    def block_raw(self, height: int) -> bytes:
        call = _Call("GET", _block_path(height), query=(("format", "raw"),), raw=True)
        body = self._request(call)
        if not isinstance(body, bytes):
            raise VeilApiError("BAD_RESPONSE", "expected raw block bytes")
        return body

    def chain(self) -> ChainInfo:
        return _typed(ChainInfo.from_json, self._request(_Call("GET", "/v1/chain")))

    def validators(self) -> list[Validator]:
        return _typed(_validators, self._request(_Call("GET", "/v1/validators")))

    def outputs(
        self, owner: bytes, *, limit: int | None = None, after: bytes | None = None
    ) -> OutputPage:
        return _typed(OutputPage.from_json, self._request(_outputs_call(owner, limit, after)))

    def all_outputs(self, owner: bytes) -> list[Output]:
        """Every output ``owner`` still owns, following the pages."""
        found: list[Output] = []
        after: bytes | None = None
        while True:
            page = self.outputs(owner, limit=1000, after=after)
            found.extend(page.outputs)
            if page.next_after is None:
                return found
            after = page.next_after

    def output(self, output_id: bytes) -> Output:
        path = f"/v1/outputs/{output_id.hex()}"
        return _typed(Output.from_json, self._request(_Call("GET", path)))

    def account(self, public_key: bytes) -> Account:
        path = f"/v1/accounts/{public_key.hex()}"
        return _typed(Account.from_json, self._request(_Call("GET", path)))

    def loan(self, loan_id: bytes, *, height: int | None = None) -> Loan:
        """One loan at ``height`` (default: the tip); ``LOAN_NOT_FOUND`` if none."""
        return _typed(Loan.from_json, self._request(_loan_call(loan_id, height)))

    def borrower_loans(self, borrower: bytes, *, height: int | None = None) -> BorrowerLoans:
        """Every loan of ``borrower`` at ``height`` (default: the tip), closed ones too."""
        return _typed(BorrowerLoans.from_json, self._request(_borrower_call(borrower, height)))

    def status(self) -> NodeStatus:
        return _typed(NodeStatus.from_json, self._request(_Call("GET", "/v1/status")))

    def health(self) -> Health:
        return _typed(Health.from_json, self._request(_HEALTH_CALL))

    def metrics(self) -> str:
        body = self._request(_Call("GET", "/metrics", raw=True))
        return body.decode("utf-8", "replace") if isinstance(body, bytes) else ""

    def openapi(self) -> Json:
        return _typed(lambda obj: obj, self._request(_Call("GET", "/openapi.json")))


# --- async --------------------------------------------------------------------------------


class AsyncClient:
    """The same calls over aiohttp; use as ``async with AsyncClient(url) as c``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = _normalize(base_url)
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncClient:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _once(self, call: _Call) -> _Answer:
        headers = {} if call.content_type is None else {"Content-Type": call.content_type}
        timeout = call.timeout_s or self.timeout_s
        try:
            async with self._http().request(
                call.method,
                call.url(self.base_url),
                data=call.body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                body = await response.read()
                header = response.headers.get("Retry-After")
                return _Answer(response.status, _retry_after(response.status, header, body), body)
        except TimeoutError:
            raise VeilApiError("TIMEOUT", f"no answer within {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise VeilApiError("NODE_UNREACHABLE", f"cannot reach {self.base_url}: {exc}") from None

    async def _request(self, call: _Call) -> Json | bytes:
        attempts = self.retry.attempts if call.retry_safe else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                answer = await self._once(call)
            except VeilApiError as exc:
                if last or exc.code != "NODE_UNREACHABLE":
                    raise
                await asyncio.sleep(self.retry.delay_s(attempt, None))
                continue
            if answer.status in RETRYABLE_STATUSES and not last and call is not _HEALTH_CALL:
                await asyncio.sleep(self.retry.delay_s(attempt, answer.retry_after_s))
                continue
            return _read_answer(call, answer)
        raise VeilApiError("NODE_UNREACHABLE", "no attempt made")

    async def submit(self, tx_bytes: bytes) -> TxStatus:
        return _typed(TxStatus.from_json, await self._request(_submit_call(tx_bytes)))

    async def submit_batch(self, txs: list[bytes]) -> list[BatchItem]:
        return _batch_items(await self._request(_batch_call(txs)))

    async def tx(self, tx_id: bytes) -> TxStatus:
        return _typed(TxStatus.from_json, await self._request(_tx_call(tx_id)))

    async def wait_for_commit(self, tx_id: bytes, timeout_s: float = 30.0) -> TxStatus:
        deadline = time.monotonic() + timeout_s
        while True:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            wait_ms = min(remaining_ms, NODE_WAIT_CAP_MS)
            status = _typed(TxStatus.from_json, await self._request(_tx_call(tx_id, wait_ms)))
            if status.final or remaining_ms <= wait_ms:
                return status

    async def block(self, height: int | None = None) -> Block:
        return _typed(Block.from_json, await self._request(_Call("GET", _block_path(height))))

    async def block_raw(self, height: int) -> bytes:
        call = _Call("GET", _block_path(height), query=(("format", "raw"),), raw=True)
        body = await self._request(call)
        if not isinstance(body, bytes):
            raise VeilApiError("BAD_RESPONSE", "expected raw block bytes")
        return body

    async def chain(self) -> ChainInfo:
        return _typed(ChainInfo.from_json, await self._request(_Call("GET", "/v1/chain")))

    async def validators(self) -> list[Validator]:
        return _typed(_validators, await self._request(_Call("GET", "/v1/validators")))

    async def outputs(
        self, owner: bytes, *, limit: int | None = None, after: bytes | None = None
    ) -> OutputPage:
        body = await self._request(_outputs_call(owner, limit, after))
        return _typed(OutputPage.from_json, body)

    async def output(self, output_id: bytes) -> Output:
        path = f"/v1/outputs/{output_id.hex()}"
        return _typed(Output.from_json, await self._request(_Call("GET", path)))

    async def account(self, public_key: bytes) -> Account:
        path = f"/v1/accounts/{public_key.hex()}"
        return _typed(Account.from_json, await self._request(_Call("GET", path)))

    async def loan(self, loan_id: bytes, *, height: int | None = None) -> Loan:
        return _typed(Loan.from_json, await self._request(_loan_call(loan_id, height)))

    async def borrower_loans(self, borrower: bytes, *, height: int | None = None) -> BorrowerLoans:
        body = await self._request(_borrower_call(borrower, height))
        return _typed(BorrowerLoans.from_json, body)

    async def status(self) -> NodeStatus:
        return _typed(NodeStatus.from_json, await self._request(_Call("GET", "/v1/status")))

    async def health(self) -> Health:
        return _typed(Health.from_json, await self._request(_HEALTH_CALL))

    async def metrics(self) -> str:
        body = await self._request(_Call("GET", "/metrics", raw=True))
        return body.decode("utf-8", "replace") if isinstance(body, bytes) else ""

    async def openapi(self) -> Json:
        return _typed(lambda obj: obj, await self._request(_Call("GET", "/openapi.json")))

    async def events(self) -> AsyncIterator[Json]:
        """The node's ``/v1/events`` messages (block_committed, tx_status) as they come."""
        ws_url = "ws" + self.base_url[len("http") :] + "/v1/events"
        try:
            async with self._http().ws_connect(ws_url) as socket:
                async for message in socket:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    parsed = json.loads(message.data)
                    if isinstance(parsed, dict):
                        yield parsed
        except aiohttp.ClientError as exc:
            raise VeilApiError("NODE_UNREACHABLE", f"events: {exc}") from None
