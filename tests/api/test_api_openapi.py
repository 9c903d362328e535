"""``/openapi.json`` against the route table, both ways, and as a valid OpenAPI 3.1 shape."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient, TestServer

from node.api import create_app
from node.api.openapi import OPENAPI
from node.api.routes import ROUTES
from tests.api.chain_fixture import ApiChain
from tests.api.in_process_node import InProcessNode


def spec_operations(spec: dict[str, object]) -> set[tuple[str, str]]:
    paths = spec["paths"]
    assert isinstance(paths, dict)
    return {(method.upper(), path) for path, item in paths.items() for method in item}


def table_operations() -> set[tuple[str, str]]:
    return {(route.method, route.path) for route in ROUTES}


def test_every_route_is_in_the_spec_and_every_spec_path_is_a_route() -> None:
    assert spec_operations(OPENAPI) - table_operations() == set()
    assert table_operations() - spec_operations(OPENAPI) == set()


def test_the_check_sees_a_missing_or_extra_route() -> None:
    """Guard against a comparison that can never fail."""
    paths = dict(OPENAPI["paths"])  # type: ignore[call-overload]
    del paths["/v1/chain"]
    assert ("GET", "/v1/chain") in table_operations() - spec_operations({"paths": paths})
    paths["/v1/extra"] = {"get": {}}
    assert ("GET", "/v1/extra") in spec_operations({"paths": paths}) - table_operations()


def test_path_parameters_are_declared() -> None:
    for path, item in OPENAPI["paths"].items():  # type: ignore[attr-defined]
        names = set(re.findall(r"{(\w+)}", path))
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, path


def test_every_reference_resolves() -> None:
    schemas = OPENAPI["components"]["schemas"]  # type: ignore[index]
    text = repr(OPENAPI)
    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in schemas, name


async def test_the_served_document_is_the_spec(api_chain: ApiChain) -> None:
    app = create_app(InProcessNode(api_chain.world, api_chain.store))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/openapi.json")
        served = await response.json()
    assert served["openapi"] == "3.1.0"
    assert spec_operations(served) == table_operations()
