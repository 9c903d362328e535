"""``node.logging``: JSON lines or key=value, and no secret, amount or opening ever logged.

The lifecycle test runs txs through the API (admitted, refused, committed,
read back with memos) with every ``veil`` logger at DEBUG in JSON lines, then
greps the log and every response for the amounts, blindings and memo keys.
"""

from __future__ import annotations

import io
import json
import logging

import msgpack
from aiohttp.test_utils import TestClient, TestServer

from ledger.build import build_attest
from node.api import create_app
from node.logging import REDACTED, configure_logging
from tests.api.chain_fixture import ApiChain
from tests.api.in_process_node import InProcessNode
from tests.spec.ledger_world import World

MSGPACK = {"Content-Type": "application/msgpack"}


def capture(json_lines: bool) -> tuple[io.StringIO, logging.Handler]:
    stream = io.StringIO()
    return stream, configure_logging(json_lines=json_lines, level=logging.DEBUG, stream=stream)


def release(handler: logging.Handler) -> None:
    """Undo ``configure_logging`` so later tests' ``caplog`` sees ``veil`` records again."""
    root = logging.getLogger("veil")
    root.removeHandler(handler)
    root.propagate = True
    root.setLevel(logging.NOTSET)


def test_json_lines_carry_fields_and_redact_secret_names() -> None:
    stream, handler = capture(json_lines=True)
    try:
        logging.getLogger("veil.test").info(
            "tx admitted", extra={"tx_id": b"\x01\x02", "amount": 4242, "blinding": 7}
        )
    finally:
        release(handler)
    line = json.loads(stream.getvalue())
    assert line["message"] == "tx admitted" and line["level"] == "INFO"
    assert line["tx_id"] == "0102"
    assert line["amount"] == line["blinding"] == REDACTED
    assert "4242" not in stream.getvalue()


def test_key_value_lines_and_one_handler_after_two_calls() -> None:
    stream, first = capture(json_lines=False)
    stream, second = capture(json_lines=False)
    try:
        logging.getLogger("veil.test").warning("peer fault", extra={"kind": "bad_frame"})
    finally:
        release(second)
    assert first not in logging.getLogger("veil").handlers
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("veil.test: peer fault kind=bad_frame")


async def test_a_tx_lifecycle_logs_no_secret_amount_or_opening(api_chain: ApiChain) -> None:
    world = World()
    node = InProcessNode(world, world.new_store())
    stream, handler = capture(json_lines=True)
    responses: list[str] = []
    try:
        async with TestClient(TestServer(create_app(node))) as client:

            async def call(method: str, path: str, body: bytes | None = None) -> None:
                response = await client.request(method, path, data=body, headers=MSGPACK)
                responses.append(await response.text())

            await call("POST", "/v1/txs", api_chain.issue.encode())
            node.commit_pending()
            await call("POST", "/v1/txs", api_chain.transfer.encode())
            await call("POST", "/v1/txs", api_chain.tampered_proof.encode())
            await call("POST", "/v1/txs:batch", msgpack.packb([api_chain.double_spend.encode()]))
            node.commit_pending()
            await call("POST", "/v1/txs", api_chain.double_spend.encode())
            await call("POST", "/v1/txs", b"\xc1")
            for tx in (api_chain.issue, api_chain.transfer):
                await call("GET", f"/v1/txs/{tx.tx_id.hex()}")
                for output_id in tx.output_ids():
                    await call("GET", f"/v1/outputs/{output_id.hex()}")
            for path in ("/v1/blocks/1", "/v1/blocks/2", "/v1/chain", "/v1/status", "/metrics"):
                await call("GET", path)
    finally:
        release(handler)
    assert len(api_chain.secrets) >= 10
    log = stream.getvalue()
    lines = [json.loads(line) for line in log.splitlines()]
    messages = [line["message"] for line in lines]
    assert "tx admitted" in messages and "tx rejected" in messages
    assert "block committed" in messages
    rejected = [line for line in lines if line["message"] == "tx rejected"]
    assert {line["reason"] for line in rejected} >= {"BAD_RANGE_PROOF", "DOUBLE_SPEND", "MALFORMED"}
    assert all("request_id" in line for line in rejected)
    everything = log + "\n".join(responses)
    leaked = [secret for secret in api_chain.secrets if secret in everything]
    assert leaked == []


async def _submit_attest_batch(level: int) -> list[dict[str, object]]:
    """Three attests and one duplicate in one ``txs:batch``; the JSON log lines at ``level``."""
    world = World()
    node = InProcessNode(world, world.new_store())
    attests = [
        build_attest(world.bank_b.identity, world.chain_id, "kyc", bytes([n]) * 32, nonce=n)
        for n in (1, 2, 3)
    ]
    body = msgpack.packb([a.encode() for a in [*attests, attests[0]]])
    stream = io.StringIO()
    handler = configure_logging(json_lines=True, level=level, stream=stream)
    try:
        async with TestClient(TestServer(create_app(node))) as client:
            response = await client.post("/v1/txs:batch", data=body, headers=MSGPACK)
            assert response.status == 200
    finally:
        release(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_batch_logs_one_info_line_and_each_admitted_tx_only_at_debug() -> None:
    """Per-tx INFO lines cost a formatted record and a write per tx per node
    (docs/performance.md): a batch logs one line with its counts."""
    info = await _submit_attest_batch(logging.INFO)
    assert [line["message"] for line in info] == ["tx batch"]
    (batch,) = info
    assert (batch["txs"], batch["admitted"], batch["duplicates"], batch["busy"]) == (4, 3, 1, 0)
    assert batch["rejected"] == 0 and isinstance(batch["first_admitted_id"], str)
    debug = await _submit_attest_batch(logging.DEBUG)
    admitted = [line["tx_id"] for line in debug if line["message"] == "tx admitted"]
    assert len(admitted) == 3 and admitted[0] == batch["first_admitted_id"]
