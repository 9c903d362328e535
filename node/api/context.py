"""What every handler reads from the app: the node's services and the API's limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web

from node.services import NodeServices

DEFAULT_MAX_BODY_BYTES: Final = 1 << 20
"""The node's ``[api] max_body_bytes`` default too (``node.settings.ApiSection``), so
an app built without the setting refuses what the node refuses."""
DEFAULT_MAX_BATCH_TXS: Final = 256
DEFAULT_MAX_WAIT_MS: Final = 30_000
DEFAULT_PAGE_LIMIT: Final = 100
MAX_PAGE_LIMIT: Final = 1_000
DEFAULT_EVENTS_MAX_QUEUE: Final = 1_024
DEFAULT_MAX_EVENT_SUBSCRIBERS: Final = 64
"""Each subscriber costs the event loop, the one consensus runs on, a send per event
(257 for a full block); a node's dashboards and indexers need few."""


@dataclass(frozen=True, slots=True)
class ApiSettings:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_batch_txs: int = DEFAULT_MAX_BATCH_TXS
    max_wait_ms: int = DEFAULT_MAX_WAIT_MS
    """The cap on ``GET /v1/txs/{id}?wait=commit&timeout_ms=``."""
    events_max_queue: int = DEFAULT_EVENTS_MAX_QUEUE
    """Events a ``/v1/events`` subscriber may fall behind before it is dropped."""
    max_event_subscribers: int = DEFAULT_MAX_EVENT_SUBSCRIBERS
    """Open ``/v1/events`` subscriptions at most (``[api] max_event_subscribers``)."""


SERVICES_KEY: Final = web.AppKey[NodeServices]("veil_services")
SETTINGS_KEY: Final = web.AppKey[ApiSettings]("veil_api_settings")


def services_of(request: web.Request) -> NodeServices:
    return request.app[SERVICES_KEY]


def settings_of(request: web.Request) -> ApiSettings:
    return request.app[SETTINGS_KEY]
