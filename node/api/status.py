"""``/v1/status``, ``/healthz`` and ``/metrics``: the node's own state, for people and probes."""

from __future__ import annotations

from aiohttp import web

from node.api.context import services_of
from node.api.errors import ApiCode, error_body
from node.api.params import check_known_params
from node.api.views import Json
from node.metrics import METRICS_CONTENT_TYPE
from node.services import NodeStatus


def status_body(status: NodeStatus) -> Json:
    catching_up = status.catching_up
    return {
        "height": status.height,
        "view": status.view,
        "primary": status.primary,
        "state_root": status.state_root.hex(),
        "last_commit_ms": status.last_commit_ms,
        "peers": [
            {"index": p.index, "public_key": p.public_key.hex(), "connected": p.connected}
            for p in status.peers
        ],
        "mempool_txs": status.mempool_txs,
        "mempool_bytes": status.mempool_bytes,
        "catching_up": None
        if catching_up is None
        else {"target_height": catching_up.target_height, "done_height": catching_up.done_height},
        "stopped": status.stopped,
        "stop_reason": status.stop_reason,
        "wal_latched": status.wal_latched,
        "msm_backend": status.msm_backend,
    }


async def get_status(request: web.Request) -> web.Response:
    check_known_params(request.query, frozenset())
    return web.json_response(status_body(services_of(request).status()))


def failed_checks(status: NodeStatus, validator_count: int) -> list[str]:
    """Why this node should not get traffic: the names of the failed health checks.

    Quorum: this node and its connected peers must make 2f+1 of the n validators,
    or it cannot commit anything.
    """
    failed = []
    if status.stopped:
        failed.append("stopped")
    if status.wal_latched:
        failed.append("wal_latched")
    faulty = (validator_count - 1) // 3
    reachable = 1 + sum(1 for peer in status.peers if peer.connected)
    if reachable < 2 * faulty + 1:
        failed.append("no_quorum_of_peers")
    if status.catching_up is not None:
        failed.append("catching_up")
    return failed


async def get_health(request: web.Request) -> web.Response:
    check_known_params(request.query, frozenset())
    services = services_of(request)
    failed = failed_checks(services.status(), len(services.genesis.validators))
    if not failed:
        return web.json_response({"status": "ok", "failed": []})
    body = error_body(ApiCode.UNHEALTHY, "failed checks: " + ", ".join(failed))
    return web.json_response(body | {"status": "unhealthy", "failed": failed}, status=503)


async def get_metrics(request: web.Request) -> web.Response:
    check_known_params(request.query, frozenset())
    body = services_of(request).metrics.render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = METRICS_CONTENT_TYPE
    return response
