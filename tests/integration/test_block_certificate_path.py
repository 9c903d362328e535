"""The client's check of a stored block, end to end: block -> certificate -> batch digest.

A batch with a rejected request is executed and committed with a commit
certificate signed by 3 of the 4 validators over consensus's proposal digest.
A client holding only the genesis then reads the block, its metadata, its
rejected list and its certificate from the store, rebuilds the batch
(``reassemble_batch``), recomputes the digest and verifies the certificate,
exactly as docs/ledger.md says. Tampering with anything stored beside the
block breaks the check.
"""

from __future__ import annotations

import dataclasses
import hashlib

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from consensus.certificate import CommitCertificate, verify_commit_certificate
from consensus.messages import Commit, ProposalMetadata, Request, proposal_digest, signed_bytes
from consensus.wire import decode_certificate, encode_certificate
from ledger.batch import BlockMetadata, RejectedRequest, reassemble_batch
from ledger.block import Block, decode_block, primary_for_view, tx_root
from ledger.build import build_attest
from ledger.execute import commit_executed, request_id_of
from ledger.genesis import Genesis
from ledger.store import Store
from tests.spec.ledger_world import GENESIS_TIME_MS, USD, World


def validator_keys(world: World) -> list[SigningKey]:
    """The validators' raw ed25519 keys (ledger_world derives each party from a seed)."""
    keys = []
    for party in world.validators:
        seed = hashlib.sha256(b"veil-test-party/" + party.name.encode()).digest()
        key = SigningKey(seed)
        assert bytes(key.verify_key) == party.key
        keys.append(key)
    return keys


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        VerifyKey(public_key).verify(message, signature)
    except BadSignatureError:
        return False
    return True


def client_check(store: Store, genesis: Genesis, height: int) -> bool:
    """What a client recomputes, with the genesis as its only trust anchor."""
    chain_id = genesis.chain_id
    block = decode_block(store.block_at(height) or b"")
    metadata = store.metadata_at(height)
    rejected = store.rejected_at(height)
    certificate = decode_certificate(store.certificate_at(height) or b"")
    if metadata is None or rejected is None:
        return False
    payloads = reassemble_batch([tx.encode() for tx in block.txs], rejected)
    batch = tuple(Request(request_id_of(p, chain_id), p) for p in payloads)
    proposal = ProposalMetadata(metadata.timestamp_ms, metadata.proposed_view)
    digest = proposal_digest(batch, proposal, chain_id)
    validators = [v.public_key for v in genesis.validators]
    header = block.header
    return (
        certificate.seq == height
        and certificate.digest == digest
        and verify_commit_certificate(certificate, validators, verify, chain_id)
        and header.height == height
        and header.view == metadata.proposed_view
        and header.proposer == primary_for_view(genesis, metadata.proposed_view)
        and header.timestamp_ms >= metadata.timestamp_ms
        and header.tx_root == tx_root(block.txs)
    )


def certify(
    world: World, payloads: list[bytes], metadata: BlockMetadata, height: int, signers: int
) -> bytes:
    chain_id = world.chain_id
    batch = tuple(Request(request_id_of(p, chain_id), p) for p in payloads)
    proposal = ProposalMetadata(metadata.timestamp_ms, metadata.proposed_view)
    digest = proposal_digest(batch, proposal, chain_id)
    view = metadata.proposed_view
    commits = []
    for sender, key in enumerate(validator_keys(world)[:signers]):
        unsigned = Commit(view, height, digest, sender)
        signature = bytes(key.sign(signed_bytes(unsigned, chain_id)).signature)
        commits.append(dataclasses.replace(unsigned, signature=signature))
    return encode_certificate(CommitCertificate(view, height, digest, tuple(commits)))


def test_a_client_checks_a_stored_block_against_its_certificate() -> None:
    world = World()
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(10)])
    attest = build_attest(world.bank_b.identity, world.chain_id, "x", b"\x01" * 32, nonce=1)
    payloads = [issue.encode(), b"\x93junk", attest.encode(), issue.encode()]
    height = store.height() + 1
    executed = world.execute(store, payloads, view=2)
    metadata = executed.metadata
    assert metadata == BlockMetadata(GENESIS_TIME_MS + height, 2)
    assert [(r.index_in_batch, r.reason.value) for r in executed.rejected] == [
        (1, "MALFORMED"),
        (3, "DUPLICATE_TX"),
    ]
    commit_executed(store, executed, certify(world, payloads, metadata, height, signers=3))
    assert client_check(store, world.genesis, height)


def test_anything_changed_beside_the_block_fails_the_check() -> None:
    world = World()
    attest = build_attest(world.bank_b.identity, world.chain_id, "y", b"\x02" * 32, nonce=1)
    payloads = [b"\x00", attest.encode()]
    cases = {
        "rejected payload changed": lambda e: dataclasses.replace(
            e, rejected=(RejectedRequest(0, "MALFORMED", b"\x01"),)
        ),
        "rejected request dropped": lambda e: dataclasses.replace(e, rejected=()),
        "metadata changed": lambda e: dataclasses.replace(
            e, metadata=BlockMetadata(e.metadata.timestamp_ms + 1, e.metadata.proposed_view)
        ),
    }
    honest_store = world.new_store()
    honest = world.execute(honest_store, payloads)
    height = honest_store.height() + 1
    certificate = certify(world, payloads, honest.metadata, height, signers=3)
    commit_executed(honest_store, honest, certificate)
    assert client_check(honest_store, world.genesis, height)
    for name, change in cases.items():
        store = world.new_store()
        executed = world.execute(store, payloads)
        commit_executed(store, change(executed), certificate)
        assert not client_check(store, world.genesis, height), name
    # Two signers of four are no quorum.
    store = world.new_store()
    executed = world.execute(store, payloads)
    commit_executed(store, executed, certify(world, payloads, executed.metadata, height, 2))
    assert not client_check(store, world.genesis, height)


def test_the_block_alone_does_not_give_back_the_batch() -> None:
    # Why the rejected list is stored: without it the digest cannot be recomputed.
    world = World()
    store = world.new_store()
    payloads = [
        b"\x00",
        build_attest(world.bank_b.identity, world.chain_id, "z", b"\x03" * 32, nonce=1).encode(),
    ]
    executed = world.execute(store, payloads)
    block: Block = executed.block
    assert reassemble_batch([tx.encode() for tx in block.txs], ()) != tuple(payloads)
