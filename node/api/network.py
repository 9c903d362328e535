"""``/v1/network``: the validators with their API URLs, and which one answers.

What the explorer page (and any dashboard) needs to reach every node: genesis
carries each validator's ``http_endpoint``; ``self_index`` is this node's own
index, the one validator its status does not list as a peer.
"""

from __future__ import annotations

from aiohttp import web

from node.api.context import services_of
from node.api.params import check_known_params
from node.api.views import Json


def api_url_of(endpoint: str) -> str | None:
    """A genesis ``http_endpoint`` as a URL: ``None`` when empty, ``http://`` when bare."""
    endpoint = endpoint.strip().rstrip("/")
    if not endpoint:
        return None
    if "://" in endpoint:
        return endpoint
    return f"http://{endpoint}"


def network_body(request: web.Request) -> Json:
    services = services_of(request)
    validators = services.genesis.validators
    peer_indexes = {peer.index for peer in services.status().peers}
    others = [index for index in range(len(validators)) if index not in peer_indexes]
    return {
        "chain_name": services.genesis.chain_name,
        "self_index": others[0] if len(others) == 1 else None,
        "validators": [
            {
                "index": index,
                "name": validator.name,
                "public_key": validator.public_key.hex(),
                "api_url": api_url_of(validator.http_endpoint),
            }
            for index, validator in enumerate(validators)
        ],
    }


async def get_network(request: web.Request) -> web.Response:
    check_known_params(request.query, frozenset())
    return web.json_response(network_body(request))
