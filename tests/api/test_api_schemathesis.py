"""Schemathesis against ``/openapi.json`` of the API served on a real 127.0.0.1 port.

The node behind it is an ``InProcessNode`` over a LevelDB store holding real
blocks (an issue and a confidential transfer, with their certificates). Every
generated request must get an answer that is not a 5xx and that matches the
documented schema. Kept to about half a minute so it runs in ``make test``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from ledger.chain import open_chain
from ledger.leveldb_store import LevelDBStore
from ledger.stored_block import stored_block_claim
from node.api import create_app
from node.api.openapi import OPENAPI
from tests.api.chain_fixture import ApiChain
from tests.api.in_process_node import InProcessNode
from tests.api.served_app import ServedApp
from tests.spec.ledger_world import World

EXAMPLES_PER_OPERATION = 25


@schemathesis.serializer("application/msgpack")
def _msgpack_bytes(ctx: schemathesis.SerializationContext, value: object) -> bytes:
    """The msgpack route takes raw tx bytes: send generated binary as is."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return str(value).encode()


@pytest.fixture(scope="module")
def served(
    api_chain: ApiChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, schemathesis.BaseSchema]]:
    world: World = api_chain.world
    path: Path = tmp_path_factory.mktemp("api-store")
    store = LevelDBStore(path, block_claims=stored_block_claim)
    open_chain(store, world.genesis)
    node = InProcessNode(world, store)
    for tx in (api_chain.issue, api_chain.transfer):
        asyncio.run(node.submit(tx.encode()))
        node.commit_pending()
    try:
        app = ServedApp(lambda: create_app(node, max_body_bytes=256 * 1024), "api-under-test")
        with app as server:
            yield server.url, schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    finally:
        store.close()


OPERATIONS = sorted(
    (method.upper(), route) for route, item in OPENAPI["paths"].items() for method in item
)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_api_conforms_to_its_openapi(
    served: tuple[str, schemathesis.BaseSchema], method: str, path: str
) -> None:
    base_url, schema = served
    operation = schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, timeout=30)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    check()
