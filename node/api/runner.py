"""The API's aiohttp runner: malformed HTTP gets the JSON error envelope too.

Why: aiohttp's HTTP parser refuses a request it cannot parse (a bad request
line, a header over 8 KiB, a bad ``Content-Length``) before any handler or
middleware runs, and its ``RequestHandler.handle_error`` answers it with a
plain-text 400. The API's contract is that every error is ``{"error":
{"code", "message"}}`` (docs/api.md), so a client library can parse every
answer the node gives. Here the connection's handler keeps aiohttp's logging
and status and replaces only the body: ``MALFORMED_HTTP`` (400) with the first
words of aiohttp's reason, which never quote the client's bytes (they may hold
a secret the client meant for another server), or ``INTERNAL`` (500) for an
error that escaped the error middleware, a bug.

aiohttp picks the connection handler's class inside ``web.Server.__call__``,
so the runner builds a ``web.Server`` subclass from the one aiohttp made for
the app, with the same request handler, request factory and settings.
``tests/unit/test_node_http_protocol_log.py`` checks the bodies against a real
socket, so an aiohttp release that moves these seams fails there.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from node.api.errors import ApiCode, ApiError, error_response
from node.logging import http_error_summary


def malformed_http_error(status: int, exc: BaseException | None) -> ApiError:
    """The API error for a request aiohttp refused with ``status``."""
    if status >= 500:
        return ApiError(ApiCode.INTERNAL, "internal error")
    return ApiError(ApiCode.MALFORMED_HTTP, f"not a valid HTTP request: {http_error_summary(exc)}")


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own errors as the API does."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own first: it logs (through node.logging.HttpServerLog), and it
        # raises if part of a response was sent already.
        plain = super().handle_error(request, status, exc, message)
        response = error_response(malformed_http_error(plain.status, exc))
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """``web.AppRunner`` whose connections use ``JsonErrorRequestHandler``, and whose
    handlers are cancelled when their client hangs up (aiohttp's default keeps them:
    a ``?wait=commit`` ran on, with its waiter, for 30 s after the client left).
    Handlers that must finish anyway (an admission) shield themselves."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        kwargs.setdefault("handler_cancellation", True)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # the app's start-up, then aiohttp's server
        settings: dict[str, Any] = dict(made._kwargs)
        return _JsonErrorServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **settings,
        )
