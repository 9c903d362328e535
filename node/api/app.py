"""``create_app``: the node's HTTP API as an aiohttp application over ``NodeServices``."""

from __future__ import annotations

from aiohttp import web

from node.api.context import (
    DEFAULT_EVENTS_MAX_QUEUE,
    DEFAULT_MAX_BATCH_TXS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_EVENT_SUBSCRIBERS,
    DEFAULT_MAX_WAIT_MS,
    SERVICES_KEY,
    SETTINGS_KEY,
    ApiSettings,
)
from node.api.errors import error_middleware
from node.api.events import FANOUT_KEY, event_fanout
from node.api.explorer import add_explorer
from node.api.routes import ROUTES
from node.services import NodeServices


def create_app(
    services: NodeServices,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_batch_txs: int = DEFAULT_MAX_BATCH_TXS,
    max_wait_ms: int = DEFAULT_MAX_WAIT_MS,
    events_max_queue: int = DEFAULT_EVENTS_MAX_QUEUE,
    max_event_subscribers: int = DEFAULT_MAX_EVENT_SUBSCRIBERS,
) -> web.Application:
    """The API app; the caller runs it (``web.AppRunner``) on its own loop and address.

    ``max_body_bytes`` bounds every request body (413 ``BODY_TOO_LARGE`` above it).
    """
    for name, value in (
        ("max_body_bytes", max_body_bytes),
        ("max_batch_txs", max_batch_txs),
        ("events_max_queue", events_max_queue),
        ("max_event_subscribers", max_event_subscribers),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if isinstance(max_wait_ms, bool) or not isinstance(max_wait_ms, int) or max_wait_ms < 0:
        raise ValueError(f"max_wait_ms must be a non-negative int, got {max_wait_ms!r}")
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=max_body_bytes,
        # Bodies are read as sent: a Content-Encoding is refused (415), never decoded.
        handler_args={"auto_decompress": False},
    )
    app[SERVICES_KEY] = services
    app[SETTINGS_KEY] = ApiSettings(
        max_body_bytes, max_batch_txs, max_wait_ms, events_max_queue, max_event_subscribers
    )
    app[FANOUT_KEY] = event_fanout(services, events_max_queue)
    for route in ROUTES:
        if route.method == "GET":
            app.router.add_get(route.path, route.handler, allow_head=False)
        else:
            app.router.add_route(route.method, route.path, route.handler)
    add_explorer(app)
    app.on_response_prepare.append(_allow_cross_origin_reads)
    return app


async def _allow_cross_origin_reads(request: web.Request, response: web.StreamResponse) -> None:
    """Any page may read (GET) this API, so one node's explorer can show every node's
    status. Writes stay same-origin: a browser sends a cross-origin msgpack or JSON
    ``POST`` only after a preflight, which this API never approves."""
    if request.method == "GET" and (request.path.startswith("/v1/") or request.path == "/healthz"):
        response.headers["Access-Control-Allow-Origin"] = "*"
