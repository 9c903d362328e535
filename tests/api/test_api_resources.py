"""What the API's resources say: statuses with certificates, blocks without amounts,
pagination, waiting for a commit, idempotent submits, health checks, the 500 path."""

from __future__ import annotations

import asyncio
import base64
import logging

import msgpack
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ledger.block import decode_block
from ledger.build import build_attest
from ledger.tx import TAG_ISSUE, TAG_TRANSFER, decode_tx
from node.api import create_app
from node.api.status import failed_checks
from node.api.txs import status_view, status_word
from node.services import (
    CatchUp,
    Committed,
    Duplicate,
    Pending,
    TxRejectedStatus,
    TxStatus,
    Unknown,
)
from tests.api.chain_fixture import LOAN_PRINCIPAL, LOAN_TERMS, ApiChain
from tests.api.in_process_node import CertificateCountingNode, InProcessNode
from tests.spec.ledger_world import USD, World

MSGPACK = {"Content-Type": "application/msgpack"}


def client_for(node: InProcessNode, **settings: int) -> TestClient:  # type: ignore[type-arg]
    return TestClient(TestServer(create_app(node, **settings)))


async def test_a_committed_tx_carries_its_place_and_certificate(api_chain: ApiChain) -> None:
    node = InProcessNode(api_chain.world, api_chain.store)
    async with client_for(node) as client:
        body = await (await client.get(f"/v1/txs/{api_chain.transfer.tx_id.hex()}")).json()
    assert body["status"] == "committed"
    assert (body["height"], body["index"]) == (2, 0)
    assert body["block_hash"] == api_chain.store.block_hash_at(2).hex()  # type: ignore[union-attr]
    assert body["certificate"]["seq"] == 2
    assert [c["sender"] for c in body["certificate"]["commits"]] == [0, 1, 2]


async def test_loans_show_terms_status_and_commitments_at_a_height_never_amounts(
    api_chain: ApiChain,
) -> None:
    node = InProcessNode(api_chain.world, api_chain.store)
    alice = api_chain.world.alice.key.hex()
    async with client_for(node) as client:
        tip_answer = await client.get(f"/v1/borrowers/{alice}/loans")
        text = await tip_answer.text()
        tip = await tip_answer.json()
        before = await (await client.get(f"/v1/borrowers/{alice}/loans?height=1")).json()
        one = await (await client.get(f"/v1/loans/{api_chain.loan.tx_id.hex()}")).json()
    principal = api_chain.loan.openings[0].commitment().hex()
    assert before["height"] == 1 and before["loans"] == []
    assert tip["height"] == 2 and tip["borrower"] == alice
    assert tip["block_hash"] == api_chain.store.block_hash_at(2).hex()  # type: ignore[union-attr]
    assert tip["certificate"]["seq"] == 2
    assert tip["loans"] == [{k: v for k, v in one.items() if k != "height"}]
    assert one == {
        "id": api_chain.loan.tx_id.hex(),
        "lender": api_chain.world.bank_a.key.hex(),
        "borrower": alice,
        "asset": USD.hex(),
        "rate_bps": LOAN_TERMS.rate_bps,
        "period_blocks": LOAN_TERMS.period_blocks,
        "maturity_height": LOAN_TERMS.maturity_height,
        "purpose": LOAN_TERMS.purpose,
        "principal_commitment": principal,
        "outstanding_commitment": principal,
        "status": "active",
        "overdue": False,
        "originated_height": 2,
        "accrued_periods": 0,
        "closed_height": None,
        "height": 2,
    }
    assert str(LOAN_PRINCIPAL) not in text


async def test_a_block_shows_kinds_and_commitments_never_amounts(api_chain: ApiChain) -> None:
    node = InProcessNode(api_chain.world, api_chain.store)
    async with client_for(node) as client:
        one = await client.get("/v1/blocks/1")
        text = await one.text()
        body = await one.json()
        raw = await (await client.get("/v1/blocks/1?format=raw")).read()
        latest = await (await client.get("/v1/blocks/latest")).json()
    tx = body["txs"][0]
    assert tx["id"] == api_chain.issue.tx_id.hex()
    assert tx["kind"] == TAG_ISSUE.decode()
    assert [o["commitment"] for o in tx["outputs"]] == [
        o.commitment().hex() for o in api_chain.issue.openings
    ]
    assert "amount" not in text and "4242424242" not in text
    assert raw == api_chain.store.block_at(1)
    assert decode_block(raw).header.height == 1
    assert latest["height"] == 2 and latest["txs"][0]["kind"] == TAG_TRANSFER.decode()
    assert latest["txs"][0]["inputs"] == [api_chain.issue.output_ids()[0].hex()]


async def test_outputs_paginate_and_show_memos_and_spent_status(api_chain: ApiChain) -> None:
    alice = api_chain.world.alice.key.hex()
    node = InProcessNode(api_chain.world, api_chain.store)
    seen: list[str] = []
    async with client_for(node) as client:
        after = None
        for _ in range(10):
            query = f"/v1/outputs?owner={alice}&limit=1" + (f"&after={after}" if after else "")
            page = await (await client.get(query)).json()
            seen += [o["id"] for o in page["outputs"]]
            after = page["next_after"]
            if after is None:
                break
        spent = await (
            await client.get(f"/v1/outputs/{api_chain.issue.output_ids()[0].hex()}")
        ).json()
    expected = sorted(api_chain.store.outputs_by_owner(api_chain.world.alice.key))
    assert seen == [o.hex() for o in expected] and len(seen) >= 2
    assert api_chain.issue.output_ids()[0].hex() not in seen  # spent: out of the owner index
    assert api_chain.transfer.output_ids()[1].hex() in seen
    assert spent["spent"] is True and spent["spent_by"] == api_chain.transfer.tx_id.hex()
    memo = api_chain.issue.tx  # the memo bytes as sealed in the tx
    assert base64.b64decode(spent["owner_memo"]) in memo.body
    assert base64.b64decode(spent["audit_memo"]) in memo.body


async def test_submit_is_idempotent_and_wait_returns_at_commit() -> None:
    world = World()
    store = world.new_store()
    node = InProcessNode(world, store)
    attest = build_attest(world.bank_b.identity, world.chain_id, "kyc", b"\x05" * 32, nonce=1)
    async with client_for(node) as client:
        first = await client.post("/v1/txs", data=attest.encode(), headers=MSGPACK)
        again = await client.post("/v1/txs", data=attest.encode(), headers=MSGPACK)
        assert first.status == again.status == 202
        assert (
            await first.json()
            == await again.json()
            == {"id": attest.tx_id.hex(), "status": "pending"}
        )
        path = f"/v1/txs/{attest.tx_id.hex()}?wait=commit&timeout_ms=10000"
        waiting = asyncio.ensure_future(client.get(path))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        node.commit_pending()
        answer = await (await waiting).json()
        assert answer["status"] == "committed" and answer["height"] == 1
        timed_out = await (await client.get(path.replace("10000", "0"))).json()
        assert timed_out["status"] == "committed"
        after_commit = await (
            await client.post("/v1/txs", data=attest.encode(), headers=MSGPACK)
        ).json()
        assert after_commit == {"id": attest.tx_id.hex(), "status": "committed"}


async def test_wait_gives_the_pending_status_at_the_timeout() -> None:
    world = World()
    node = InProcessNode(world, world.new_store())
    attest = build_attest(world.bank_b.identity, world.chain_id, "k", b"\x06" * 32, nonce=1)
    async with client_for(node) as client:
        await client.post("/v1/txs", data=attest.encode(), headers=MSGPACK)
        body = await (
            await client.get(f"/v1/txs/{attest.tx_id.hex()}?wait=commit&timeout_ms=30")
        ).json()
    assert body == {"id": attest.tx_id.hex(), "status": "pending"}


async def test_a_batch_answers_each_tx_in_order(api_chain: ApiChain) -> None:
    node = InProcessNode(api_chain.world, api_chain.store)
    txs = [api_chain.attest().encode(), b"\x00", api_chain.double_spend.encode()]
    async with client_for(node) as client:
        response = await client.post("/v1/txs:batch", data=msgpack.packb(txs), headers=MSGPACK)
        body = await response.json()
    assert response.status == 200
    results = body["results"]
    assert results[0] == {"id": api_chain.attest().tx_id.hex(), "status": "pending"}
    assert results[1]["error"]["code"] == "MALFORMED"
    assert results[2]["error"]["code"] == "DOUBLE_SPEND"
    assert results[2]["id"] == api_chain.double_spend.tx_id.hex()


def test_health_names_every_failed_check(api_chain: ApiChain) -> None:
    node = InProcessNode(api_chain.world, api_chain.store)
    assert failed_checks(node.status(), 4) == []
    node.connected_peers = 2
    assert failed_checks(node.status(), 4) == []  # self + 2 peers = 2f+1
    node.connected_peers = 1
    node.stopped = node.wal_latched = True
    node.catching_up = CatchUp(target_height=100, done_height=40)
    assert failed_checks(node.status(), 4) == [
        "stopped",
        "wal_latched",
        "no_quorum_of_peers",
        "catching_up",
    ]


class BrokenNode(InProcessNode):
    def status(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internal detail 0xdeadbeef")


async def test_an_unexpected_error_is_a_generic_500_logged_with_its_request_id(
    api_chain: ApiChain, caplog: pytest.LogCaptureFixture
) -> None:
    node = BrokenNode(api_chain.world, api_chain.store)
    with caplog.at_level(logging.ERROR, logger="veil.api"):
        async with client_for(node) as client:
            response = await client.get("/v1/status")
            body = await response.json()
    request_id = response.headers["X-Request-Id"]
    assert response.status == 500 and body["error"]["code"] == "INTERNAL"
    assert request_id in body["error"]["message"]
    assert "deadbeef" not in await response.text()
    logged = [r for r in caplog.records if r.getMessage() == "internal error"]
    assert len(logged) == 1 and logged[0].request_id == request_id  # type: ignore[attr-defined]
    assert "deadbeef" in caplog.text


async def test_accounts_show_membership_and_the_last_nonce(api_chain: ApiChain) -> None:
    world = api_chain.world
    node = InProcessNode(world, api_chain.store)
    async with client_for(node) as client:
        bank = await (await client.get(f"/v1/accounts/{world.bank_a.key.hex()}")).json()
        alice = await (await client.get(f"/v1/accounts/{world.alice.key.hex()}")).json()
    assert bank["member"] is True and bank["member_name"] == "Bank A"
    assert bank["last_nonce"] == 1  # block 1's issue
    assert alice["member"] is False and alice["last_nonce"] == 1  # her loan consent, block 2
    assert alice["registered_by"] == world.bank_a.key.hex()
    assert alice["memo_public_key"] == world.alice.memo_public.hex()


class InFlightNode(InProcessNode):
    """A runtime may answer ``Duplicate`` for a tx that left its mempool for a batch in
    flight and is not yet in a block: its status is then ``Unknown`` for a moment."""

    async def submit(self, tx_bytes: bytes) -> Duplicate:  # type: ignore[override]
        return Duplicate(decode_tx(tx_bytes, self.genesis.chain_id, max_tx_bytes=1 << 16).tx_id)

    def tx_status(self, tx_id: bytes) -> Unknown:  # type: ignore[override]
        return Unknown(tx_id)


async def test_a_duplicate_of_a_tx_in_flight_is_pending_not_404(api_chain: ApiChain) -> None:
    node = InFlightNode(api_chain.world, api_chain.store)
    attest = api_chain.attest()
    async with client_for(node) as client:
        response = await client.post("/v1/txs", data=attest.encode(), headers=MSGPACK)
        body = await response.json()
    assert (response.status, body) == (202, {"id": attest.tx_id.hex(), "status": "pending"})


async def test_a_committed_duplicate_answers_committed_without_reading_its_certificate(
    api_chain: ApiChain,
) -> None:
    """A resubmitted tx's answer carries only its status word, so the API no longer
    reads and decodes the block's certificate for it (it did, once per duplicate)."""
    node = CertificateCountingNode(api_chain.world, api_chain.store)
    transfer = api_chain.transfer
    async with client_for(node) as client:
        one = await client.post("/v1/txs", data=transfer.encode(), headers=MSGPACK)
        batch = await client.post(
            "/v1/txs:batch", data=msgpack.packb([transfer.encode()] * 3), headers=MSGPACK
        )
        one_body, batch_body = await one.json(), await batch.json()
        assert node.certificate_reads == 0
        status = await (await client.get(f"/v1/txs/{transfer.tx_id.hex()}")).json()
    expected = {"id": transfer.tx_id.hex(), "status": "committed"}
    assert (one.status, one_body) == (202, expected)
    assert batch_body == {"results": [expected] * 3}
    assert status["status"] == "committed" and node.certificate_reads == 1


@pytest.mark.parametrize(
    "status",
    [
        Pending(b"\x01" * 32),
        Committed(b"\x02" * 32, 2, 0, b"\x03" * 32),
        TxRejectedStatus(b"\x04" * 32, "BAD_SIGNATURE", 3),
        TxRejectedStatus(b"\x05" * 32, "EXPIRED", None),
        Unknown(b"\x06" * 32),
    ],
)
def test_status_word_is_the_status_views_word_and_pending_for_unknown(
    api_chain: ApiChain, status: TxStatus
) -> None:
    node = InProcessNode(api_chain.world, api_chain.store)
    if isinstance(status, Unknown):
        assert status_word(status) == "pending"
        return
    assert status_word(status) == status_view(status, node)["status"]
