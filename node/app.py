"""The application the consensus core drives: a committed batch becomes a stored block.

Sans-I/O in the sense of the issue: no asyncio, clock or randomness here (a
test checks the imports); the runtime calls ``LedgerApp.execute`` on its one
serial worker thread, because the synced LevelDB write blocks.

``execute(Execute)``:

1. the batch's payloads, in batch order, and its metadata go through
   ``ledger.execute_batch`` with the node's ``ProofCache`` as the range
   verifier, so proofs the mempool admitted are not verified again, and its
   ``StatelessCache``, so neither are the signatures of the bytes it admitted;
2. the block, its commit certificate (``consensus.wire.encode_certificate``),
   the metadata, the rejected list and the indexes are committed in one
   synced write (``Store.commit_block``);
3. the result carries the ``Executed(seq, state_root)`` event for the core
   and what the runtime publishes (block hash, tx ids, rejected requests).

The core emits ``Execute`` in seq order, each once: ``seq`` must be the
store's height + 1. Anything else is a broken local invariant (a runtime
bug, or a store that moved under us), raised, never skipped.

``validate_proposal_for(genesis)`` is the pure check the core runs on a fresh
proposal's metadata: the ledger's ``check_proposal_timestamp`` rule (never
before the parent's timestamp, at most ``max_timestamp_skew_ms`` ahead of
this node's clock), in the core's metadata terms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from consensus.actions import Execute
from consensus.events import Executed
from consensus.messages import Batch, ProposalMetadata
from consensus.proposal import ValidateProposal
from consensus.wire import encode_certificate
from ledger.batch import BlockMetadata, RejectedRequest
from ledger.execute import execute_batch
from ledger.genesis import Genesis
from ledger.invariants import invariant
from ledger.proof_cache import ProofCache
from ledger.stateless_cache import StatelessCache
from ledger.store import Store
from node.catchup import VerifiedBlock


@dataclass(frozen=True, slots=True)
class BlockApplied:
    """What executing one batch did: the event for the core and the facts to publish."""

    executed: Executed
    block_hash: bytes
    tx_ids: tuple[bytes, ...]
    rejected: tuple[RejectedRequest, ...]
    timestamp_ms: int
    state_writes: Mapping[bytes, bytes | None]
    """The block's state changes, for the mempool's rebuild (``ledger.pending_changes``);
    not changed after."""


class BlockMismatchError(Exception):
    """A certified batch re-executed here to another block than the header a peer
    sent. The certificate does not cover the header, so either that peer lied or
    this node's state diverged: the runtime decides which (``HeaderDisputes``)."""

    def __init__(self, height: int, built: bytes, claimed: bytes) -> None:
        super().__init__(
            f"height {height}: re-execution built block {built.hex()}, the peer's header "
            f"is {claimed.hex()}"
        )
        self.height = height
        self.built = built
        self.claimed = claimed


class LedgerApp:
    """Executes committed batches into ``store``; owns no thread, clock or socket."""

    def __init__(
        self,
        store: Store,
        genesis: Genesis,
        proof_cache: ProofCache,
        stateless_cache: StatelessCache | None = None,
    ) -> None:
        self.store = store
        self.genesis = genesis
        self.proof_cache = proof_cache
        self.stateless_cache = stateless_cache

    def execute(self, action: Execute) -> BlockApplied:
        """A batch this node's core committed."""
        return self._commit(
            action.seq, action.batch, action.metadata, encode_certificate(action.certificate)
        )

    def apply_certified(self, block: VerifiedBlock, *, sync: bool = True) -> BlockApplied:
        """A batch fetched by catch-up under a verified certificate. Re-executing it
        must rebuild the block whose header the peer sent; if not, nothing is written
        (``BlockMismatchError``). ``sync=False``: see ``Store.commit_block``."""
        return self._commit(
            block.height,
            block.batch,
            block.metadata,
            block.certificate_bytes,
            expected_block_hash=block.block_hash,
            sync=sync,
        )

    def _commit(
        self,
        seq: int,
        batch: Batch,
        proposal: ProposalMetadata,
        certificate: bytes,
        *,
        expected_block_hash: bytes | None = None,
        sync: bool = True,
    ) -> BlockApplied:
        height = self.store.height()
        invariant(seq == height + 1, f"Execute for seq {seq} on a store at height {height}")
        metadata = BlockMetadata(proposal.timestamp_ms, proposal.proposed_view)
        cache = self.stateless_cache
        executed = execute_batch(
            self.store,
            self.genesis,
            seq,
            [request.payload for request in batch],
            metadata,
            range_verifier=self.proof_cache.batch_verify,
            stateless_checked=None if cache is None else cache.checked,
            recorded_applies=None if cache is None else cache.applied,
        )
        built = executed.result.block_hash
        if expected_block_hash is not None and built != expected_block_hash:
            raise BlockMismatchError(seq, built, expected_block_hash)
        root = self.store.commit_block(executed.block_write(certificate), sync=sync)
        return BlockApplied(
            executed=Executed(seq, root),
            block_hash=executed.result.block_hash,
            tx_ids=executed.result.tx_ids,
            rejected=executed.rejected,
            timestamp_ms=executed.block.header.timestamp_ms,
            state_writes=executed.result.delta,
        )


def validate_proposal_for(genesis: Genesis) -> ValidateProposal:
    """The core's proposal check from the genesis's ``max_timestamp_skew_ms``."""
    max_skew_ms = genesis.params.max_timestamp_skew_ms

    def validate(
        metadata: ProposalMetadata, parent: ProposalMetadata | None, now_ms: int
    ) -> str | None:
        if parent is not None and metadata.timestamp_ms < parent.timestamp_ms:
            return f"timestamp {metadata.timestamp_ms} before the previous block's"
        if metadata.timestamp_ms > now_ms + max_skew_ms:
            return f"timestamp {metadata.timestamp_ms} more than {max_skew_ms} ms ahead"
        return None

    return validate
