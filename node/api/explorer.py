"""``/explorer/``: the block explorer, static files shipped inside the ``node`` package.

The page is plain HTML, CSS and JS (no build step, nothing fetched from
elsewhere) that reads this API and ``/v1/events``. The files are read once,
when the app is made, from the package's ``explorer/`` folder (package data,
so an installed node has them); only those names are served.
"""

from __future__ import annotations

from importlib import resources
from pathlib import PurePosixPath
from typing import Final

from aiohttp import web

from ledger.invariants import InvariantViolation
from node.api.errors import ApiCode, ApiError

EXPLORER_PATH: Final = "/explorer/"
CONTENT_TYPES: Final = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self' http: https: ws: wss:; base-uri 'none'; frame-ancestors 'none'"
)
"""Everything from this node; ``connect-src`` also reaches the other validators' APIs."""
EXPLORER_FILES_KEY: Final = web.AppKey[dict[str, tuple[bytes, str]]]("veil_explorer_files")


def load_explorer_files() -> dict[str, tuple[bytes, str]]:
    """File name -> (bytes, content type) of every servable file in ``node/explorer``."""
    folder = resources.files("node").joinpath("explorer")
    files: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        content_type = CONTENT_TYPES.get(PurePosixPath(entry.name).suffix)
        if entry.is_file() and content_type is not None:
            files[entry.name] = (entry.read_bytes(), content_type)
    if "index.html" not in files:
        raise InvariantViolation(f"the explorer's index.html is missing from {folder}")
    return files


def _file_response(request: web.Request, name: str) -> web.Response:
    found = request.app[EXPLORER_FILES_KEY].get(name)
    if found is None:
        raise ApiError(ApiCode.NOT_FOUND, f"no explorer file {name!r}")
    body, content_type = found
    response = web.Response(body=body, content_type=content_type, charset="utf-8")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    return response


async def explorer_redirect(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect(EXPLORER_PATH)


async def explorer_index(request: web.Request) -> web.Response:
    return _file_response(request, "index.html")


async def explorer_file(request: web.Request) -> web.Response:
    return _file_response(request, request.match_info["name"])


def add_explorer(app: web.Application) -> None:
    app[EXPLORER_FILES_KEY] = load_explorer_files()
    app.router.add_get("/explorer", explorer_redirect, allow_head=False)
    app.router.add_get(EXPLORER_PATH, explorer_index, allow_head=False)
    app.router.add_get(EXPLORER_PATH + "{name}", explorer_file, allow_head=False)
