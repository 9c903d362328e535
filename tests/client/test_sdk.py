"""The SDK against the real API app on a real 127.0.0.1 port (tests/api's InProcessNode
over LevelDB with real blocks): every /v1 route, typed, errors with the API's codes."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from aiohttp import web

from client.sdk import AsyncClient, Client, RetryPolicy, VeilApiError
from ledger.block import decode_block
from ledger.loans import loans_of
from tests.api.chain_fixture import ApiChain
from tests.client.served_node import ServedNode


def test_reads_every_resource_typed(served: ServedNode, api_chain: ApiChain) -> None:
    client = Client(served.url)
    world = api_chain.world
    chain = client.chain()
    assert chain.chain_id == world.chain_id == chain.genesis_hash
    assert chain.height == 2
    usd = chain.asset_by_symbol("USD.A")
    assert usd is not None and usd.issuer == world.bank_a.key
    assert [v.index for v in client.validators()] == [0, 1, 2, 3]

    genesis_block = client.block(0)
    assert genesis_block.genesis and genesis_block.header is None
    latest = client.block()
    assert latest.height == 2 and latest.header is not None
    assert latest.txs[0].id == api_chain.transfer.tx_id
    assert latest.txs[0].kind == "veil/tx/transfer/v1" and len(latest.txs[0].inputs) == 1
    assert latest.certificate is not None and len(latest.certificate.commits) >= 3
    assert decode_block(client.block_raw(2)).header.height == 2

    status = client.tx(api_chain.issue.tx_id)
    assert (status.status, status.height, status.index) == ("committed", 1, 0)
    assert status.certificate is not None and status.certificate.seq == 1

    bob_outputs = client.all_outputs(world.bob.key)
    assert [o.tx_id for o in bob_outputs] == [api_chain.transfer.tx_id]
    output = client.output(bob_outputs[0].id)
    assert output.owner == world.bob.key and not output.spent and output.owner_memo
    spent = client.output(latest.txs[0].inputs[0])
    assert spent.spent and spent.spent_by == api_chain.transfer.tx_id

    account = client.account(world.bank_a.key)
    assert account.member and account.last_nonce >= 1
    node_status = client.status()
    assert node_status.height == 2 and node_status.state_root == served.store.state_root()
    assert client.health().ok
    assert "veil_" in client.metrics()
    assert "/v1/txs" in client.openapi()["paths"]  # type: ignore[operator]


def test_loans_are_typed_and_rebuild_the_ledger_record(
    served_loan: ServedNode, api_chain: ApiChain
) -> None:
    served = served_loan
    client = Client(served.url)
    alice = api_chain.world.alice.key
    loans = client.borrower_loans(alice)
    assert (loans.borrower, loans.height) == (alice, 2)
    assert loans.block_hash == served.store.block_hash_at(2)
    assert loans.certificate is not None and loans.certificate.seq == 2
    assert loans.records() == loans_of(served.store, alice)  # what the verifier checks against
    loan = client.loan(api_chain.loan.tx_id)
    assert loan == loans.loans[0] and loan.status == "active" and not loan.overdue
    assert client.borrower_loans(alice, height=1).loans == ()
    with pytest.raises(VeilApiError) as unknown:
        client.loan(api_chain.loan.tx_id, height=1)
    assert unknown.value.code == "LOAN_NOT_FOUND"
    with pytest.raises(VeilApiError) as future:
        client.borrower_loans(alice, height=3)
    assert future.value.code == "HEIGHT_NOT_RETAINED"


def test_outputs_follow_pages(served: ServedNode, api_chain: ApiChain) -> None:
    client = Client(served.url)
    alice = api_chain.world.alice.key
    first = client.outputs(alice, limit=1)
    assert len(first.outputs) == 1 and first.next_after == first.outputs[0].id
    everything = client.all_outputs(alice)
    assert everything[0] == first.outputs[0]
    assert len(everything) == 2  # issue output 1 and the transfer's change


def test_submit_is_idempotent_and_wait_for_commit_sees_the_commit(
    served: ServedNode, api_chain: ApiChain
) -> None:
    client = Client(served.url)
    raw = api_chain.fresh_issue.encode()
    first = client.submit(raw)
    assert (first.id, first.status) == (api_chain.fresh_issue.tx_id, "pending")
    assert client.submit(raw).status == "pending"  # the same tx again is not an error
    assert client.wait_for_commit(first.id, timeout_s=0.3).status == "pending"

    waited: list[str] = []
    waiter = threading.Thread(
        target=lambda: waited.append(client.wait_for_commit(first.id, timeout_s=20).status)
    )
    waiter.start()
    served.commit_pending()
    waiter.join(30)
    assert waited == ["committed"]
    assert client.submit(raw).status == "committed"


def test_refusals_carry_the_api_code(served: ServedNode, api_chain: ApiChain) -> None:
    client = Client(served.url)
    cases = [
        (lambda: client.submit(api_chain.double_spend.encode()), "DOUBLE_SPEND", 409),
        (lambda: client.submit(b"\x00garbage"), "MALFORMED", 400),
        (lambda: client.submit(api_chain.tampered_proof.encode()), "BAD_RANGE_PROOF", 422),
        (lambda: client.tx(b"\x01" * 32), "TX_NOT_FOUND", 404),
        (lambda: client.block(99), "BLOCK_NOT_FOUND", 404),
        (lambda: client.account(api_chain.world.mallory.key), "ACCOUNT_NOT_FOUND", 404),
        (lambda: client.output(b"\x02" * 33), "OUTPUT_NOT_FOUND", 404),
    ]
    for call, code, http_status in cases:
        with pytest.raises(VeilApiError) as caught:
            call()
        assert (caught.value.code, caught.value.status) == (code, http_status)
    with pytest.raises(VeilApiError) as refused:
        client.submit(api_chain.double_spend.encode())
    assert refused.value.tx_id == api_chain.double_spend.tx_id


def test_batch_results_in_order(served: ServedNode, api_chain: ApiChain) -> None:
    items = Client(served.url).submit_batch(
        [api_chain.fresh_issue.encode(), b"junk", api_chain.double_spend.encode()]
    )
    assert [i.status.status if i.status else i.error_code for i in items] == [
        "pending",
        "MALFORMED",
        "DOUBLE_SPEND",
    ]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_node_that_is_down_is_unreachable_after_bounded_retries() -> None:
    delays: list[float] = []
    client = Client(
        f"http://127.0.0.1:{_closed_port()}", retry=RetryPolicy(attempts=3), sleep=delays.append
    )
    with pytest.raises(VeilApiError) as caught:
        client.status()
    assert caught.value.code == "NODE_UNREACHABLE" and caught.value.status is None
    assert delays == [0.2, 0.4]  # exponential back-off, then the error


def test_a_bad_url_is_refused() -> None:
    with pytest.raises(VeilApiError) as caught:
        Client("localhost:8080")
    assert caught.value.code == "INVALID_NODE_URL"


class BusyThenOk:
    """A real HTTP server that answers 503 + Retry-After twice, then a pending status."""

    def __init__(self, tx_id_hex: str) -> None:
        self.calls = 0
        self.tx_id_hex = tx_id_hex
        self.wait_ms: int | None = None
        """The exact wait in the error body, as the node gives it (``retry_after_ms``)."""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.calls <= 2:
            error: dict[str, object] = {"code": "MEMPOOL_FULL", "message": "mempool full"}
            if self.wait_ms is not None:
                error["retry_after_ms"] = self.wait_ms
            return web.json_response({"error": error}, status=503, headers={"Retry-After": "1"})
        return web.json_response({"id": self.tx_id_hex, "status": "pending"}, status=202)


async def test_busy_answers_are_retried_honouring_retry_after(api_chain: ApiChain) -> None:
    busy = BusyThenOk(api_chain.fresh_issue.tx_id.hex())
    app = web.Application()
    app.router.add_post("/v1/txs", busy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with AsyncClient(f"http://127.0.0.1:{port}") as client:
            started = asyncio.get_running_loop().time()
            status = await client.submit(api_chain.fresh_issue.encode())
            elapsed = asyncio.get_running_loop().time() - started
        assert status.status == "pending" and busy.calls == 3
        assert elapsed >= 2.0  # waited Retry-After (1 s) twice, not the 0.2 s back-off
        delays: list[float] = []
        busy.calls = 0
        sync = Client(
            f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=2), sleep=delays.append
        )
        with pytest.raises(VeilApiError) as caught:
            await asyncio.to_thread(sync.submit, api_chain.fresh_issue.encode())
        assert (caught.value.code, caught.value.status, delays) == ("MEMPOOL_FULL", 503, [1.0])
        # The body's exact wait wins over the header's whole seconds.
        busy.calls, busy.wait_ms = 0, 300
        delays.clear()
        with pytest.raises(VeilApiError):
            await asyncio.to_thread(sync.submit, api_chain.fresh_issue.encode())
        assert delays == [0.3]
    finally:
        await runner.cleanup()


def test_async_client_reads_submits_and_streams_events(
    served: ServedNode, api_chain: ApiChain
) -> None:
    async def scenario() -> list[str]:
        async with AsyncClient(served.url) as client:
            assert (await client.chain()).height == 2
            assert (await client.block(1)).txs[0].id == api_chain.issue.tx_id
            assert (await client.status()).height == 2
            assert (await client.account(api_chain.world.alice.key)).registered_by is not None
            seen: list[str] = []

            async def listen() -> None:
                async for message in client.events():
                    seen.append(str(message["type"]))
                    if message["type"] == "block_committed":
                        return

            listener = asyncio.create_task(listen())
            await asyncio.sleep(0.3)  # subscribed before the submit
            submitted = await client.submit(api_chain.fresh_issue.encode())
            await asyncio.to_thread(served.commit_pending)
            final = await client.wait_for_commit(submitted.id, timeout_s=20)
            assert final.status == "committed" and final.height == 3
            await asyncio.wait_for(listener, 20)
            with pytest.raises(VeilApiError) as caught:
                await client.block(42)
            assert caught.value.code == "BLOCK_NOT_FOUND"
            return seen

    assert asyncio.run(scenario())[-1] == "block_committed"
