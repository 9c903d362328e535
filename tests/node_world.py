"""Shared fixtures for node tests: the spec world's genesis, validator identities,
commit certificates signed the way the runtime signs them, and served blocks a
lying peer alters."""

from __future__ import annotations

import dataclasses
import hashlib

from consensus.certificate import CommitCertificate
from consensus.messages import Batch, Commit, ProposalMetadata, Request, proposal_digest
from consensus.messages import signed_bytes as consensus_signed_bytes
from ledger.block import decode_block
from ledger.execute import request_id_of
from ledger.identity import SigningIdentity
from node.catchup import CertifiedBlock
from tests.spec.ledger_world import World


def validator_identities(world: World) -> list[SigningIdentity]:
    """The validators' identities (ledger_world derives each from a seed)."""
    identities = []
    for party in world.validators:
        seed = hashlib.sha256(b"veil-test-party/" + party.name.encode()).digest()
        identity = SigningIdentity.from_seed(seed)
        if identity.public_key != party.key:
            raise AssertionError("ledger_world changed how it derives validator keys")
        identities.append(identity)
    return identities


def batch_of(world: World, payloads: list[bytes]) -> Batch:
    return tuple(Request(request_id_of(p, world.chain_id), p) for p in payloads)


def certificate_for(
    world: World, batch: Batch, metadata: ProposalMetadata, seq: int, signers: int = 3
) -> CommitCertificate:
    chain_id = world.chain_id
    digest = proposal_digest(batch, metadata, chain_id)
    view = metadata.proposed_view
    commits = []
    for sender, identity in enumerate(validator_identities(world)[:signers]):
        unsigned = Commit(view, seq, digest, sender)
        signature = identity.sign_self_tagged(consensus_signed_bytes(unsigned, chain_id))
        commits.append(dataclasses.replace(unsigned, signature=signature))
    return CommitCertificate(view, seq, digest, tuple(commits))


def with_header_proposer(data: bytes, proposer: bytes) -> bytes:
    """A served ``CertifiedBlock`` under a header with another proposer: its
    certificate still verifies (it covers the batch and metadata, not the header)."""
    served = CertifiedBlock.decode(data)
    block = decode_block(served.block)
    header = dataclasses.replace(block.header, proposer=proposer)
    return dataclasses.replace(
        served, block=dataclasses.replace(block, header=header).encode()
    ).encode()
