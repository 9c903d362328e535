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


PATH_PARAMETER_VALUES = {
    "tx_id": "00" * 32,
    "height": "1",
    "output_id": "00" * 33,
    "public_key": "00" * 32,
    "loan_id": "00" * 32,
}


async def test_every_route_that_refuses_an_unknown_parameter_documents_its_400(
    api_chain: ApiChain,
) -> None:
    """Every handler under /v1 checks its query first; each such 400 is in the spec."""
    app = create_app(InProcessNode(api_chain.world, api_chain.store))
    refusing = set()
    async with TestClient(TestServer(app)) as client:
        for route in ROUTES:
            path = route.path.format(**PATH_PARAMETER_VALUES)
            response = await client.request(route.method, path + "?no_such_parameter=1")
            if response.status == 400:
                refusing.add((route.method, route.path))
    assert ("GET", "/v1/chain") in refusing  # the probe does reach the check
    undocumented = {
        (method, path)
        for method, path in refusing
        if "400" not in OPENAPI["paths"][path][method.lower()]["responses"]  # type: ignore[index]
    }
    assert undocumented == set()


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
