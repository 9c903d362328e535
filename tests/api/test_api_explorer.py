"""The explorer's side of the API: the static page at ``/explorer/`` (self-contained,
shipped as package data), ``/v1/network``, cross-origin reads, and the public fields
block views give the page (range-proof sizes, loan ids and terms, never an amount)."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
import tomllib
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from ledger.loan_build import (
    LoanKeys,
    build_accrue,
    build_close,
    build_originate,
    build_repay,
)
from ledger.tx import LoanTerms
from node.api import create_app
from node.api.network import api_url_of
from node.api.views import tx_view
from tests.api.chain_fixture import ApiChain
from tests.api.in_process_node import InProcessNode
from tests.spec.ledger_world import USD, World

ROOT = Path(__file__).resolve().parents[2]
EXPLORER_DIR = ROOT / "node" / "explorer"


def client_for(node: InProcessNode) -> TestClient:  # type: ignore[type-arg]
    return TestClient(TestServer(create_app(node)))


async def test_the_explorer_page_and_its_files_are_served(api_chain: ApiChain) -> None:
    async with client_for(InProcessNode(api_chain.world, api_chain.store)) as client:
        bare = await client.get("/explorer", allow_redirects=False)
        index = await client.get("/explorer/")
        html = await index.text()
        files = {
            name: await client.get(f"/explorer/{name}")
            for name in ("app.js", "app.css", "logo.svg")
        }
        refused = [
            (r.status, (await r.json())["error"]["code"])
            for r in (
                await client.get("/explorer/secret.py"),
                await client.get("/explorer/..%2Fapi%2Fapp.py"),
            )
        ]
    assert bare.status == 308 and bare.headers["Location"] == "/explorer/"
    assert index.status == 200 and index.content_type == "text/html"
    assert "<title>Veil Explorer</title>" in html and 'src="app.js"' in html
    assert "default-src 'self'" in index.headers["Content-Security-Policy"]
    assert {name: r.content_type for name, r in files.items()} == {
        "app.js": "text/javascript",
        "app.css": "text/css",
        "logo.svg": "image/svg+xml",
    }
    assert refused == [(404, "NOT_FOUND")] * 2


def test_the_page_loads_nothing_from_elsewhere() -> None:
    """No CDN, no external font or script: every reference is relative to the node."""
    texts = {p.name: p.read_text(encoding="utf-8") for p in EXPLORER_DIR.iterdir()}
    assert {"index.html", "app.js", "app.css"} <= set(texts)
    references = re.findall(r'(?:src|href)="([^"]+)"', texts["index.html"])
    references += re.findall(r"url\(([^)]*)\)|@import\s+([^;]+)", texts["app.css"])  # type: ignore[arg-type]
    assert references, "the scan found no reference at all"
    for reference in references:
        flat = "".join(reference) if isinstance(reference, tuple) else reference
        assert "//" not in flat, flat
    # The script builds URLs from /v1/network (other nodes) and its own origin only;
    # the one absolute URL in it is SVG's XML namespace, a name that is never fetched.
    script = texts["app.js"].replace('"http://www.w3.org/2000/svg"', "SVG_NAMESPACE")
    assert not re.search(r"""["'`]https?://""", script)


def test_every_explorer_file_is_package_data() -> None:
    """A non-editable install ships the page: pyproject's globs cover every file."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["node"]
    files = [f"explorer/{p.name}" for p in EXPLORER_DIR.iterdir() if p.is_file()]
    assert files
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


async def test_network_lists_every_validator_and_this_node(api_chain: ApiChain) -> None:
    async with client_for(InProcessNode(api_chain.world, api_chain.store)) as client:
        response = await client.get("/v1/network")
        body = await response.json()
    genesis = api_chain.world.genesis
    assert body["chain_name"] == genesis.chain_name
    assert body["self_index"] == 0  # the in-process node lists validators 1..3 as peers
    assert [(v["index"], v["name"], v["public_key"]) for v in body["validators"]] == [
        (i, v.name, v.public_key.hex()) for i, v in enumerate(genesis.validators)
    ]
    assert all(v["api_url"] is None for v in body["validators"])  # empty in this genesis


def test_api_urls_come_from_genesis_endpoints() -> None:
    assert api_url_of("") is None
    assert api_url_of("127.0.0.1:8701") == "http://127.0.0.1:8701"
    assert api_url_of("https://bank1.example:443/") == "https://bank1.example:443"


async def test_reads_are_open_to_other_origins_and_writes_are_not(api_chain: ApiChain) -> None:
    async with client_for(InProcessNode(api_chain.world, api_chain.store)) as client:
        status = await client.get("/v1/status")
        missing = await client.get("/v1/blocks/999")
        health = await client.get("/healthz")
        submit = await client.post(
            "/v1/txs", data=b"\x00", headers={"Content-Type": "application/msgpack"}
        )
        preflight = await client.options("/v1/txs")
    assert status.headers["Access-Control-Allow-Origin"] == "*"
    assert missing.status == 404 and missing.headers["Access-Control-Allow-Origin"] == "*"
    assert health.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in submit.headers
    assert preflight.status == 405 and "Access-Control-Allow-Origin" not in preflight.headers


async def test_blocks_give_range_proof_sizes(api_chain: ApiChain) -> None:
    async with client_for(InProcessNode(api_chain.world, api_chain.store)) as client:
        issue = (await (await client.get("/v1/blocks/1")).json())["txs"][0]
        transfer = (await (await client.get("/v1/blocks/2")).json())["txs"][0]
    # An aggregated 64-bit proof for m outputs is 32·(9 + 2·log2(64·m)) bytes: the
    # issue has 4 outputs (alice's two, bank A's two), the transfer 2 (bob, change).
    assert len(issue["outputs"]) == 4 and len(transfer["outputs"]) == 2
    assert issue["proof_bytes"] == 32 * (9 + 2 * 8) == 800
    assert transfer["proof_bytes"] == 32 * (9 + 2 * 7) == 736


def test_loan_txs_show_their_public_fields_and_no_amount() -> None:
    w = World()
    store = w.new_store()
    funds = w.issue(w.bank_a, USD, [w.bank_a.plan(10_000), w.alice.plan(5_000)])
    w.commit(store, [funds])
    terms = LoanTerms(rate_bps=725, period_blocks=10, maturity_height=400, purpose="inventory")
    loan_keys = LoanKeys(w.bank_a.memo_public, w.alice.memo_public, w.auditor.memo_public)
    principal = 8_765
    originated = build_originate(
        w.bank_a.identity,
        w.alice.identity,
        w.chain_id,
        asset=USD,
        amount=principal,
        terms=terms,
        inputs=[w.spend(funds, 0)],
        keys=loan_keys,
        consent_nonce=1,
    )
    loan_id = originated.built.tx_id
    repaid = build_repay(
        w.alice.identity,
        w.chain_id,
        loan_id=loan_id,
        lender=w.bank_a.key,
        asset=USD,
        amount=1_237,
        outstanding=originated.outstanding,
        inputs=[w.spend(funds, 1)],
        keys=loan_keys,
    )
    accrued = build_accrue(
        w.bank_a.identity,
        w.chain_id,
        loan_id=loan_id,
        period=1,
        rate_bps=terms.rate_bps,
        outstanding=originated.outstanding,
        keys=loan_keys,
    )
    repaid_in_full = dataclasses.replace(originated.outstanding, value=0)
    closed = build_close(w.alice.identity, w.chain_id, loan_id=loan_id, outstanding=repaid_in_full)
    views = [
        tx_view(built.tx, w.chain_id)
        for built in (originated.built, repaid.built, accrued.built, closed)
    ]
    originate_view, repay_view, accrue_view, close_view = views
    assert originate_view["kind"] == "veil/tx/loan_originate/v1"
    assert {k: originate_view[k] for k in ("loan_id", "lender", "borrower", "asset")} == {
        "loan_id": loan_id.hex(),
        "lender": w.bank_a.key.hex(),
        "borrower": w.alice.key.hex(),
        "asset": USD.hex(),
    }
    assert (
        originate_view["rate_bps"],
        originate_view["period_blocks"],
        originate_view["maturity_height"],
        originate_view["purpose"],
    ) == (725, 10, 400, "inventory")
    assert originate_view["outputs"][0]["owner"] == w.alice.key.hex()
    assert int(str(originate_view["proof_bytes"])) > 0
    assert repay_view["loan_id"] == accrue_view["loan_id"] == close_view["loan_id"] == loan_id.hex()
    assert repay_view["borrower"] == close_view["borrower"] == w.alice.key.hex()
    assert int(str(repay_view["proof_bytes"])) > int(str(originate_view["proof_bytes"])) // 2
    assert accrue_view["lender"] == w.bank_a.key.hex() and accrue_view["period"] == 1
    assert len(str(accrue_view["interest_commitment"])) == 64
    text = json.dumps(views)
    # Whole decimal tokens only: a random hex commitment may contain "1237".
    numbers = set(re.findall(r"\b[0-9]+\b", text))
    for secret in (principal, 1_237):
        assert str(secret) not in numbers
    assert "amount" not in text
