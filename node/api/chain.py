"""``/v1/chain`` and ``/v1/validators``: what a client needs to build and check a tx."""

from __future__ import annotations

from aiohttp import web

from ledger.rules import AssetRecord, get_auditor_key
from ledger.state import NS_ASSET, namespace_prefix
from node.api.context import services_of
from node.api.params import check_known_params
from node.api.views import Json


def _validators(request: web.Request) -> list[Json]:
    return [
        {"index": index, "name": v.name, "public_key": v.public_key.hex()}
        for index, v in enumerate(services_of(request).genesis.validators)
    ]


async def get_chain(request: web.Request) -> web.Response:
    """Chain id (the genesis hash), the auditor's current memo key, assets (genesis and
    later) with their public issued totals, the validators and the tx limits."""
    check_known_params(request.query, frozenset())
    services = services_of(request)
    genesis, store = services.genesis, services.store
    prefix = namespace_prefix(NS_ASSET)
    assets: list[Json] = []
    for key, raw in store.iter_state(prefix):
        record = AssetRecord.decode(raw)
        assets.append(
            {
                "id": key[len(prefix) :].hex(),
                "symbol": record.symbol,
                "issuer": record.issuer.hex(),
                "issued_total": record.issued_total,
            }
        )
    params = genesis.params
    body: Json = {
        "chain_id": genesis.chain_id.hex(),
        "chain_name": genesis.chain_name,
        "genesis_hash": genesis.chain_id.hex(),
        "genesis_time_ms": genesis.genesis_time_ms,
        "height": store.height(),
        "auditor_memo_public_key": get_auditor_key(store).hex(),
        "assets": assets,
        "validators": _validators(request),
        "params": {"max_tx_bytes": params.max_tx_bytes, "max_block_txs": params.max_block_txs},
    }
    return web.json_response(body)


async def get_validators(request: web.Request) -> web.Response:
    check_known_params(request.query, frozenset())
    return web.json_response({"validators": _validators(request)})
