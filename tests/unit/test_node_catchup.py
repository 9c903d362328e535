"""node.catchup: certified blocks are checked against the genesis alone, fetched in
bounded parallel chunks, and re-executed into the same chain."""

from __future__ import annotations

import dataclasses

import pytest

from consensus.actions import Execute
from consensus.messages import ProposalMetadata
from consensus.wire import encode_certificate
from ledger.build import build_attest
from ledger.codec import MAX_ENCODED_BYTES
from ledger.identity import verify_self_tagged
from ledger.proof_cache import ProofCache
from ledger.store import MemoryStore
from node.app import BlockMismatchError, LedgerApp
from node.catchup import (
    MAX_CERTIFIED_BLOCK_BYTES,
    CatchUp,
    CertifiedBlock,
    HeaderDisputes,
    VerifiedBlock,
    certified_block_at,
    verify_certified_block,
)
from tests.node_world import batch_of, certificate_for, with_header_proposer
from tests.spec.ledger_world import GENESIS_TIME_MS, USD, World


def _chain(world: World, heights: int) -> MemoryStore:
    store = world.new_store()
    app = LedgerApp(store, world.genesis, ProofCache())
    for seq in range(1, heights + 1):
        attest = build_attest(
            world.bank_b.identity, world.chain_id, "d", seq.to_bytes(32, "big"), nonce=seq
        )
        payloads = [attest.encode(), b"\x00junk"]
        if seq == 1:
            payloads.append(world.issue(world.bank_a, USD, [world.alice.plan(3)]).encode())
        batch = batch_of(world, payloads)
        metadata = ProposalMetadata(GENESIS_TIME_MS + seq, 0)
        app.execute(Execute(seq, batch, metadata, certificate_for(world, batch, metadata, seq)))
    return store


def _served(store: MemoryStore, first: int, last: int) -> list[bytes]:
    blocks = [certified_block_at(store, h) for h in range(first, last + 1)]
    return [b.encode() for b in blocks if b is not None]


def test_a_served_block_verifies_and_tampering_with_it_does_not() -> None:
    world = World()
    store = _chain(world, 2)
    served = certified_block_at(store, 1)
    assert served is not None
    checked = verify_certified_block(
        served.encode(), 1, world.genesis, verify_self_tagged, served_by=1
    )
    assert isinstance(checked, VerifiedBlock) and checked.block_hash == store.block_hash_at(1)
    tampered = {
        "wrong height": (served.encode(), 2),
        "rejected payload changed": (
            dataclasses.replace(
                served, rejected=(dataclasses.replace(served.rejected[0], payload=b"\x01"),)
            ).encode(),
            1,
        ),
        "metadata changed": (
            dataclasses.replace(
                served,
                metadata=dataclasses.replace(served.metadata, timestamp_ms=GENESIS_TIME_MS + 9),
            ).encode(),
            1,
        ),
        "garbage": (b"\x93\x01", 1),
    }
    for name, (data, height) in tampered.items():
        problem = verify_certified_block(
            data, height, world.genesis, verify_self_tagged, served_by=1
        )
        assert isinstance(problem, str), name
    # Two of four signers are no quorum.
    block_2 = certified_block_at(store, 2)
    assert block_2 is not None
    batch = checked.batch
    weak = certificate_for(world, batch, checked.metadata, 1, signers=2)
    weak_block = dataclasses.replace(served, certificate=encode_certificate(weak))
    problem = verify_certified_block(
        weak_block.encode(), 1, world.genesis, verify_self_tagged, served_by=1
    )
    assert problem == "the certificate has no quorum of genesis validator signatures"


def test_a_committed_block_over_the_codec_default_is_caught_up_from_its_peers() -> None:
    """Served blocks were decoded with the codec's 1 MiB default: every honest copy of
    a larger committed block failed as undecodable, each peer was excluded in turn,
    and no node could catch up past that height."""
    world = World()
    source = world.new_store()
    # 20 requests of 60 KiB that execution rejects: a 1.2 MiB batch, well within
    # max_request_bytes and max_batch_bytes; their payloads are in the served block.
    payloads = [bytes([i]) + b"\x00" * (60 * 1024) for i in range(20)]
    batch = batch_of(world, payloads)
    metadata = ProposalMetadata(GENESIS_TIME_MS + 1, 0)
    LedgerApp(source, world.genesis, ProofCache()).execute(
        Execute(1, batch, metadata, certificate_for(world, batch, metadata, 1))
    )
    served = _served(source, 1, 1)
    assert source.height() == 1 and len(served[0]) > MAX_ENCODED_BYTES
    plan = CatchUp(0, 1, source.state_root(), (1, 2, 3), world.genesis, verify_self_tagged)
    (request,) = plan.next_requests()
    plan.on_reply(request, served)
    assert plan.faults == [] and not plan.stalled
    target = world.new_store()
    app = LedgerApp(target, world.genesis, ProofCache())
    for block in plan.ready():
        app.apply_certified(block)
    assert plan.done and target.block_hash_at(1) == source.block_hash_at(1)
    assert target.rejected_at(1) == source.rejected_at(1)
    # The bound is still there, only above any block consensus can certify.
    oversize = verify_certified_block(
        b"\x00" * (MAX_CERTIFIED_BLOCK_BYTES + 1), 1, world.genesis, verify_self_tagged, served_by=1
    )
    assert isinstance(oversize, str) and "TOO_LARGE" in oversize


def test_a_made_up_header_verifies_but_re_execution_refuses_it_and_writes_nothing() -> None:
    # A peer can serve a certified batch under any header: it verifies, and only
    # re-execution finds the header is not the one the batch builds. Nothing is
    # written then, so the honest peer's copy applies next.
    world = World()
    source = _chain(world, 1)
    honest = _served(source, 1, 1)[0]
    forged = verify_certified_block(
        with_header_proposer(honest, b"\xee" * 32),
        1,
        world.genesis,
        verify_self_tagged,
        served_by=2,
    )
    assert isinstance(forged, VerifiedBlock) and forged.served_by == 2
    assert forged.block_hash != source.block_hash_at(1)
    target = world.new_store()
    app = LedgerApp(target, world.genesis, ProofCache())
    with pytest.raises(BlockMismatchError) as refused:
        app.apply_certified(forged)
    assert (refused.value.height, refused.value.claimed) == (1, forged.block_hash)
    assert refused.value.built == source.block_hash_at(1)
    assert target.height() == 0
    checked = verify_certified_block(honest, 1, world.genesis, verify_self_tagged, served_by=1)
    assert isinstance(checked, VerifiedBlock)
    app.apply_certified(checked)
    assert target.block_hash_at(1) == source.block_hash_at(1)


def test_header_disputes_need_f_plus_1_distinct_peers_on_one_header_at_one_height() -> None:
    disputes = HeaderDisputes(quorum=2)  # n = 4, f = 1
    assert not disputes.record(5, b"A", peer=1)
    assert not disputes.record(5, b"A", peer=1)  # the same liar twice is still one
    assert not disputes.record(5, b"B", peer=2)  # two liars telling different lies
    assert disputes.disputers(5) == {1, 2} and disputes.disputers(6) == frozenset()
    assert disputes.record(5, b"A", peer=3)  # two peers on one header: one is honest
    # Only the next height to apply counts: a newer one starts afresh, an older is moot.
    assert not disputes.record(6, b"A", peer=1)
    assert disputes.disputers(5) == frozenset() and disputes.disputers(6) == {1}
    assert not disputes.record(5, b"A", peer=2)
    assert not disputes.record(6, b"C", peer=2)


def test_catch_up_fetches_in_parallel_chunks_skips_a_lying_peer_and_rebuilds_the_chain() -> None:
    world = World()
    source = _chain(world, 7)
    target = world.new_store()
    app = LedgerApp(target, world.genesis, ProofCache())
    plan = CatchUp(
        applied_height=0,
        target_height=7,
        target_state_root=source.state_root(),
        peers=(1, 2),
        genesis=world.genesis,
        verify=verify_self_tagged,
        chunk_blocks=2,
        max_parallel=2,
        max_bytes_in_flight=1 << 20,
    )
    rounds = 0
    while not plan.done:
        rounds += 1
        requests = plan.next_requests()
        assert 0 < len(requests) <= 2
        for request in requests:
            assert request.max_bytes == (1 << 20) // 2
            blocks = _served(source, request.first_height, request.last_height)
            if request.peer == 1:  # peer 1 lies about the block's metadata
                bad = CertifiedBlock.decode(blocks[0])
                blocks[0] = dataclasses.replace(
                    bad, metadata=dataclasses.replace(bad.metadata, proposed_view=5)
                ).encode()
            elif len(blocks) > 1:
                blocks = blocks[:1]  # a prefix reply: the rest is asked again
            plan.on_reply(request, blocks)
        for block in plan.ready():
            app.apply_certified(block)
        assert rounds < 50
    assert [peer for peer, _ in plan.faults] == [1]
    assert target.height() == 7 and target.state_root() == source.state_root()
    assert [target.block_hash_at(h) for h in range(8)] == [
        source.block_hash_at(h) for h in range(8)
    ]
    assert target.certificate_at(7) == source.certificate_at(7)


def _plan_against(world: World, source: MemoryStore, peers: tuple[int, ...]) -> CatchUp:
    return CatchUp(
        applied_height=0,
        target_height=source.height(),
        target_state_root=source.state_root(),
        peers=peers,
        genesis=world.genesis,
        verify=verify_self_tagged,
        chunk_blocks=1,
        max_parallel=3,
        max_bytes_in_flight=1 << 20,
    )


def test_a_peer_that_never_answers_is_asked_again_only_when_nobody_better_is_left() -> None:
    # Each failure of a silent peer costs the fetch timeout (10 s by default) and
    # holds back the blocks after the range it was asked: it must not stay in the
    # rotation while other peers answer.
    world = World()
    source = _chain(world, 12)
    plan = _plan_against(world, source, (1, 2, 3))
    asked: list[int] = []
    rounds = 0
    while not plan.done:
        rounds += 1
        for request in plan.next_requests():
            asked.append(request.peer)
            if request.peer == 2:
                plan.on_failure(request, "fetch failed: TimeoutError")
            else:
                plan.on_reply(request, _served(source, request.first_height, request.last_height))
        plan.ready()
        assert rounds < 50
    assert asked.count(2) == 1, asked
    assert plan.faults == [(2, "fetch failed: TimeoutError")]
    assert {1, 3} <= set(asked)


def test_when_every_peer_fails_the_least_failed_is_asked_and_one_reply_restores_a_peer() -> None:
    world = World()
    source = _chain(world, 6)
    plan = _plan_against(world, source, (1, 2))
    # Every request times out for a while: a plan never gives up on timeouts.
    asked: list[int] = []
    for _ in range(4):
        requests = plan.next_requests()
        assert requests and not plan.stalled
        for request in requests:
            asked.append(request.peer)
            plan.on_failure(request, "fetch failed: TimeoutError")
    assert set(asked) == {1, 2}
    # Peer 1 answers once: it is then the one asked while peer 2 still fails.
    answered = False
    while not answered:
        for request in plan.next_requests():
            if request.peer == 1:
                answered = True
                plan.on_reply(request, _served(source, request.first_height, request.last_height))
            else:
                plan.on_failure(request, "fetch failed: TimeoutError")
    plan.ready()
    requests = plan.next_requests()
    assert requests and {r.peer for r in requests} == {1}
