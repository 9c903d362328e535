"""The API's one route table (as CometBFT's ``rpc/core/routes.go``): method, path, handler.

``create_app`` registers exactly these, and ``tests`` check ``/openapi.json``
against this table both ways, so the spec cannot drift from what is served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from node.api import accounts, blocks, chain, events, loans, network, outputs, status, txs
from node.api.openapi import get_openapi


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]


ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/txs", txs.submit_tx),
    Route("POST", "/v1/txs:batch", txs.submit_batch),
    Route("GET", "/v1/txs/{tx_id}", txs.get_tx),
    # ``latest`` before ``{height}``: aiohttp matches in registration order.
    Route("GET", "/v1/blocks/latest", blocks.get_latest_block),
    Route("GET", "/v1/blocks/{height}", blocks.get_block),
    Route("GET", "/v1/chain", chain.get_chain),
    Route("GET", "/v1/validators", chain.get_validators),
    Route("GET", "/v1/outputs", outputs.list_outputs),
    Route("GET", "/v1/outputs/{output_id}", outputs.get_output),
    Route("GET", "/v1/accounts/{public_key}", accounts.get_account_view),
    Route("GET", "/v1/borrowers/{public_key}/loans", loans.list_borrower_loans),
    Route("GET", "/v1/loans/{loan_id}", loans.get_loan_view),
    Route("GET", "/v1/network", network.get_network),
    Route("GET", "/v1/status", status.get_status),
    Route("GET", "/v1/events", events.events),
    Route("GET", "/healthz", status.get_health),
    Route("GET", "/metrics", status.get_metrics),
    Route("GET", "/openapi.json", get_openapi),
)
