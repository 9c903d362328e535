"""The HTTP API of a real ``veil node run`` process (4 validators, TLS peer links).

The network first commits the chain of ``tests/api/chain_fixture.py`` (an
issue to alice, then alice pays bob) through its API. Then:

- each bad request issue 9 names gets its own 4xx code from the process (the
  in-process table, ``tests/api/test_api_table.py``, has the full list);
- schemathesis runs against the ``/openapi.json`` the process serves, every
  route, with ``not_a_server_error`` and ``response_schema_conformance``, at
  least ``MIN_FUZZ_CASES`` cases in all (derandomized, so a failure replays).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from node.api.openapi import OPENAPI
from tests.api.chain_fixture import ApiChain, build_chain
from tests.integration.node_processes import (
    Cluster,
    http_json,
    http_raw,
    metric_value,
    submit,
    wait_converged,
)
from tests.spec.ledger_world import USD

MIN_FUZZ_CASES = 2_000
EXAMPLES_PER_OPERATION = 250
FUZZ_WORKERS = 2
FUZZ_WAIT_MS = 50
"""A generated ``wait=commit`` on a tx that never comes would hold its case for up
to the node's cap (30 s): waits are cut to this."""
REQUEST_TIMEOUT_S = 120
"""Generous: this checks answers, not latency, and a starved shared machine once made a
block read time out at 30 s, which hypothesis then could not replay."""
MAX_BODY_BYTES = 1 << 20  # node.toml's default [api] max_body_bytes


@schemathesis.serializer("application/msgpack")
def _msgpack_bytes(ctx: schemathesis.SerializationContext, value: object) -> bytes:
    """The msgpack route takes raw tx bytes: send generated binary as is."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return str(value).encode()


@dataclass
class LiveNetwork:
    cluster: Cluster
    chain: ApiChain


def committed(url: str, tx_id: bytes) -> dict[str, object]:
    code, body = http_json(f"{url}/v1/txs/{tx_id.hex()}?wait=commit&timeout_ms=20000")
    assert (code, body.get("status")) == (200, "committed"), body
    return body


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    chain = build_chain()
    with Cluster(tmp_path_factory.mktemp("live-api"), chain.world) as cluster:
        cluster.start()
        for tx in (chain.issue, chain.transfer):
            assert submit(cluster.urls[0], tx.encode())[0] == 202
            committed(cluster.urls[0], tx.tx_id)
        yield LiveNetwork(cluster, chain)


def test_each_bad_request_gets_its_own_4xx_code_from_a_real_process(live: LiveNetwork) -> None:
    chain, url = live.chain, live.cluster.urls[1]
    world = chain.world
    # A transfer signed by mallory, who has no account, of alice's unspent output 1.
    unregistered_sender = world.transfer(
        world.mallory, USD, [world.spend(chain.issue, 1)], [world.bob.plan(5)]
    )
    msgpack = "application/msgpack"
    cases = {
        "a tampered proof": (chain.tampered_proof.encode(), msgpack, 422, "BAD_RANGE_PROOF"),
        "a double spend": (chain.double_spend.encode(), msgpack, 409, "DOUBLE_SPEND"),
        "an unregistered sender": (unregistered_sender.encode(), msgpack, 422, "UNREGISTERED"),
        "an oversize body": (b"\x00" * (MAX_BODY_BYTES + 1), msgpack, 413, "BODY_TOO_LARGE"),
        "garbage bytes": (b"\xc1garbage", msgpack, 400, "MALFORMED"),
        "the wrong content type": (
            chain.attest().encode(),
            "text/plain",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    }
    answers = {}
    for name, (body, content_type, _, _) in cases.items():
        status, answer = http_raw(f"{url}/v1/txs", body, content_type)
        assert answer is not None, name
        error = answer.get("error")
        assert isinstance(error, dict) and isinstance(error.get("message"), str), (name, answer)
        answers[name] = (status, error["code"])
    assert answers == {name: (case[2], case[3]) for name, case in cases.items()}
    assert len({code for _, code in answers.values()}) == len(cases)
    # The proof was refused by the node's proof pool, and counted.
    assert metric_value(url, "veil_txs_rejected_total", 'reason="BAD_RANGE_PROOF"') >= 1
    # None of them reached a block; the network still commits.
    for tx in (chain.tampered_proof, chain.double_spend, unregistered_sender):
        code, status = http_json(f"{url}/v1/txs/{tx.tx_id.hex()}")
        assert status.get("status") != "committed", (code, status)
    good = chain.attest(nonce=world.next_nonce(world.bank_b))
    assert submit(url, good.encode())[0] == 202
    committed(url, good.tx_id)
    wait_converged(live.cluster, list(live.cluster.indices))


OPERATIONS = sorted(
    (method.upper(), path) for path, item in OPENAPI["paths"].items() for method in item
)  # type: ignore[attr-defined]


def bounded_wait(case: schemathesis.Case) -> schemathesis.Case:
    if case.query and case.query.get("wait") == "commit":
        given_ms = case.query.get("timeout_ms")
        timeout_ms = given_ms if isinstance(given_ms, int) else FUZZ_WAIT_MS
        case.query["timeout_ms"] = min(timeout_ms, FUZZ_WAIT_MS)
    return case


def fuzz_operation(
    schema: schemathesis.BaseSchema, base_url: str, method: str, path: str
) -> tuple[int, str | None]:
    """Run one operation's cases; how many ran, and the failure (None if none)."""
    operation = schema[path][method]
    calls = 0
    lock = threading.Lock()

    @given(case=operation.as_strategy().map(bounded_wait))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        nonlocal calls
        with lock:
            calls += 1
        response = case.call(base_url=base_url, timeout=REQUEST_TIMEOUT_S)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    try:
        check()
    except Exception as exc:  # the failing case, reported with its operation
        return calls, f"{method} {path}:\n" + "".join(traceback.format_exception(exc))
    return calls, None


@pytest.mark.slow
def test_schemathesis_against_a_live_node_process(live: LiveNetwork) -> None:
    base_url = live.cluster.urls[2]
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    with ThreadPoolExecutor(FUZZ_WORKERS) as pool:
        results = dict(
            zip(
                OPERATIONS,
                pool.map(lambda op: fuzz_operation(schema, base_url, *op), OPERATIONS),
                strict=True,
            )
        )
    failures = [failure for _, failure in results.values() if failure is not None]
    assert failures == [], "\n\n".join(failures)
    counts = {f"{m} {p}": n for (m, p), (n, _) in results.items()}
    print(f"\nschemathesis on a live node: {sum(counts.values())} cases: {counts}")
    assert all(n >= 1 for n in counts.values()), counts
    assert {p for _, p in OPERATIONS if p.startswith("/v1/")} == {
        p for (_, p), (n, _) in results.items() if p.startswith("/v1/") and n >= 1
    }
    assert sum(counts.values()) >= MIN_FUZZ_CASES, counts
    # The node took it all without stopping: it still answers healthy and commits.
    assert http_json(f"{base_url}/healthz")[0] == 200
    assert live.cluster.running() == list(live.cluster.indices)
