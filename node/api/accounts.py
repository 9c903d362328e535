"""``/v1/accounts/{pk}``: a registered account (a bank's too) and its last nonce."""

from __future__ import annotations

from aiohttp import web

from ledger.rules import get_account, get_member, last_nonce
from node.api.context import services_of
from node.api.errors import ApiCode, ApiError
from node.api.outputs import PUBLIC_KEY_BYTES
from node.api.params import check_known_params, parse_hex
from node.api.views import Json


async def get_account_view(request: web.Request) -> web.Response:
    check_known_params(request.query, frozenset())
    public_key = parse_hex(request.match_info["public_key"], PUBLIC_KEY_BYTES, "public key")
    store = services_of(request).store
    account = get_account(store, public_key)
    member = get_member(store, public_key)
    if account is None and member is None:
        raise ApiError(ApiCode.ACCOUNT_NOT_FOUND, "no registered account or member with that key")
    memo_key = (account or member).memo_public_key  # type: ignore[union-attr]
    body: Json = {
        "public_key": public_key.hex(),
        "memo_public_key": memo_key.hex(),
        "registered_by": None if account is None else account.registered_by.hex(),
        "member": member is not None,
        "member_name": None if member is None else member.name,
        "last_nonce": last_nonce(store, public_key),
    }
    return web.json_response(body)
