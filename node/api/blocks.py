"""``/v1/blocks/{height}`` and ``/v1/blocks/latest``: a block as JSON, or its raw bytes."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from node.api.context import services_of
from node.api.errors import ApiCode, ApiError
from node.api.params import check_known_params, parse_int
from node.api.views import block_view

MAX_HEIGHT: Final = (1 << 63) - 1
RAW_CONTENT_TYPE: Final = "application/octet-stream"


def _block_response(request: web.Request, height: int) -> web.Response:
    query = request.query
    check_known_params(query, frozenset({"format"}))
    output_format = query.get("format", "json")
    if output_format not in ("json", "raw"):
        raise ApiError(ApiCode.INVALID_PARAMETER, "format must be 'json' or 'raw'")
    services = services_of(request)
    store = services.store
    block_bytes = store.block_at(height)
    block_hash = store.block_hash_at(height)
    if block_bytes is None or block_hash is None:
        raise ApiError(ApiCode.BLOCK_NOT_FOUND, f"no block at height {height}")
    if output_format == "raw":
        # The exact stored bytes: a wallet decodes and checks them itself.
        return web.Response(body=block_bytes, content_type=RAW_CONTENT_TYPE)
    certificate = store.certificate_at(height) or b""
    view = block_view(height, block_hash, block_bytes, certificate, services.genesis)
    return web.json_response(view)


async def get_block(request: web.Request) -> web.Response:
    height = parse_int(request.match_info["height"], "height", low=0, high=MAX_HEIGHT)
    return _block_response(request, height)


async def get_latest_block(request: web.Request) -> web.Response:
    return _block_response(request, services_of(request).store.height())
