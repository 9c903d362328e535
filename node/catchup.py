"""Catch-up: fetch certified blocks from peers, check them, hand them over in order.

Sans-I/O (no asyncio, clock or randomness: a test checks the imports). The
runtime asks ``CatchUp`` what to fetch (``next_requests``), sends the
requests to the peers, feeds each reply to ``on_reply`` (or ``on_failure``)
and applies what ``ready`` returns, in height order, with
``LedgerApp.apply_certified``; when ``done``, it checks the state root and
tells the core ``StateTransferCompleted``.

What a peer sends is a ``CertifiedBlock``: the stored block, its commit
certificate, the proposal metadata and the rejected requests. Its check
(``verify_certified_block``) trusts only the genesis: the batch is rebuilt
from the block's txs and the rejected list (``reassemble_batch``), its
proposal digest recomputed, and the certificate must carry 2f+1 distinct
genesis validators' COMMIT signatures over (view, height, that digest).
A block that fails is a fault of the peer that sent it; its range is asked
of another peer. The block is then re-executed (``execute_batch``, the same
path as a committed batch), so the node's own store computes every state
root.

The certificate covers the batch and its metadata, not the header: a peer
can send a certified batch under a header it made up (another proposer,
state root, tx root). So a header our re-execution does not rebuild is
first the fault of the peer that served it, and the block is asked of
another (``HeaderDisputes``); only ``f + 1`` distinct peers serving the
same such header (one of them honest) show that this node's state is the
one that is wrong (docs/consensus.md, "Catch-up").

Fetching is parallel and bounded: the range is cut into chunks of
``chunk_blocks`` heights, at most ``max_parallel`` requests are out at once,
each bounded to ``max_bytes_in_flight // max_parallel`` bytes of reply
(a shorter reply, a prefix, is fine: the rest is asked again), and verified
blocks wait at most that window ahead of the next height to apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from consensus.certificate import CommitCertificate, Verify, verify_commit_certificate
from consensus.messages import Batch, ProposalMetadata, Request, proposal_digest
from consensus.wire import MAX_WIRE_BYTES, WireError, decode_certificate
from ledger.batch import BatchMismatchError, BlockMetadata, RejectedRequest, reassemble_batch
from ledger.block import MAX_BLOCK_BYTES, block_hash, decode_block
from ledger.codec import U64, DecodeError, Record
from ledger.execute import request_id_of
from ledger.genesis import Genesis
from ledger.reasons import TxRejected
from ledger.store import StoreReader

MAX_CERTIFIED_BLOCK_BYTES: Final = MAX_BLOCK_BYTES + MAX_WIRE_BYTES
"""Decode bound of a served ``CertifiedBlock``: no block consensus can certify is
over it. Its txs and rejected requests are one batch's requests, under the wire
limit (a batch counts each request's id and framing, more than a rejected entry
adds); its header and certificate add under 70 KiB. The codec's default (1 MiB)
refused every copy of a larger committed block, so no node could catch up past
it. The peer frame that carried the bytes has already bounded memory."""


@dataclass(frozen=True, slots=True)
class CertifiedBlock(Record):
    """One stored block as peers exchange it (a ``BlocksReply`` entry)."""

    height: U64
    block: bytes
    certificate: bytes
    metadata: BlockMetadata
    rejected: tuple[RejectedRequest, ...]


def certified_block_at(store: StoreReader, height: int) -> CertifiedBlock | None:
    """What this node serves for ``height``, or None if it has no such block."""
    block = store.block_at(height)
    certificate = store.certificate_at(height)
    metadata = store.metadata_at(height)
    rejected = store.rejected_at(height)
    if height < 1 or block is None or certificate is None or metadata is None or rejected is None:
        return None
    return CertifiedBlock(height, block, certificate, metadata, rejected)


@dataclass(frozen=True, slots=True)
class VerifiedBlock:
    """A block whose certificate holds: the batch consensus committed at ``height``."""

    height: int
    block_hash: bytes
    """The hash of the header the peer sent: the certificate does not cover it."""
    batch: Batch
    metadata: ProposalMetadata
    certificate: CommitCertificate
    certificate_bytes: bytes
    served_by: int
    """The peer that sent it: a header re-execution does not rebuild is its fault."""


def verify_certified_block(
    data: bytes, height: int, genesis: Genesis, verify: Verify, *, served_by: int
) -> VerifiedBlock | str:
    """The checked block at ``height`` from peer ``served_by``, or why ``data`` is not
    one. Never raises."""
    chain_id = genesis.chain_id
    try:
        certified = CertifiedBlock.decode(data, max_bytes=MAX_CERTIFIED_BLOCK_BYTES)
        if certified.height != height:
            return f"asked for height {height}, got {certified.height}"
        block = decode_block(certified.block)
        certificate = decode_certificate(certified.certificate)
        payloads = reassemble_batch([tx.encode() for tx in block.txs], certified.rejected)
    except (DecodeError, TxRejected, WireError, BatchMismatchError, ValueError) as exc:
        return f"undecodable certified block: {type(exc).__name__}: {exc}"
    if block.header.height != height or certificate.seq != height:
        return f"block or certificate is not for height {height}"
    metadata = ProposalMetadata(certified.metadata.timestamp_ms, certified.metadata.proposed_view)
    batch = tuple(Request(request_id_of(p, chain_id), p) for p in payloads)
    if proposal_digest(batch, metadata, chain_id) != certificate.digest:
        return "the certificate does not cover this block's batch"
    validators = [v.public_key for v in genesis.validators]
    if not verify_commit_certificate(certificate, validators, verify, chain_id):
        return "the certificate has no quorum of genesis validator signatures"
    return VerifiedBlock(
        height,
        block_hash(block.header, chain_id),
        batch,
        metadata,
        certificate,
        certified.certificate,
        served_by,
    )


@dataclass(slots=True)
class HeaderDisputes:
    """The headers peers served with a valid certificate that this node's re-execution
    of the certified batch did not rebuild, at the next height to apply.

    A certificate binds the batch and metadata, not the header, so one byzantine
    peer can serve a made-up header: that alone is its fault, and the block is
    asked of another peer (``disputers`` are not asked for that height again).
    Honest nodes all execute the certified batch on the same state, so ``quorum``
    (f + 1) distinct peers serving one header that we do not rebuild include an
    honest one: then this node's state diverged (``record`` says so).

    Bounded: a dispute is only ever at the store's height + 1, which only grows, so
    only the newest height is kept, each peer at most once per header.
    """

    quorum: int
    _height: int = 0
    _served: dict[bytes, set[int]] = field(default_factory=dict)

    def record(self, height: int, block_hash: bytes, peer: int) -> bool:
        """``peer`` served header ``block_hash`` at ``height`` and re-execution built
        another; True when ``quorum`` distinct peers have served that same header."""
        if height < self._height:
            return False  # applied since: moot
        if height > self._height:
            self._height, self._served = height, {}
        servers = self._served.setdefault(block_hash, set())
        servers.add(peer)
        return len(servers) >= self.quorum

    def disputers(self, height: int) -> frozenset[int]:
        """The peers that served a header at ``height`` re-execution did not rebuild."""
        if height != self._height:
            return frozenset()
        return frozenset(peer for servers in self._served.values() for peer in servers)


@dataclass(frozen=True, slots=True)
class FetchRequest:
    peer: int
    first_height: int
    last_height: int
    max_bytes: int


@dataclass(slots=True)
class PeerFailures:
    """Failures (a timeout, a lost link, a bad block) of each peer since its last
    useful reply; the runtime keeps one for all its catch-ups and idle probes. A
    peer that never answers costs the fetch timeout each time it is asked, and the
    blocks after its range wait that long; ranked by this, it is asked again only
    when every other peer has failed as often. Timeouts never exclude a peer, so
    an outage slows catch-up but does not stall it. A peer marked once stays
    behind the others until it is asked and answers: while they serve, catch-up
    just spreads its requests over fewer peers."""

    counts: dict[int, int] = field(default_factory=dict)

    def failed(self, peer: int) -> None:
        self.counts[peer] = self.counts.get(peer, 0) + 1

    def answered(self, peer: int) -> None:
        self.counts.pop(peer, None)

    def of(self, peer: int) -> int:
        return self.counts.get(peer, 0)

    def ranked(self, peers: Iterable[int]) -> list[int]:
        """``peers`` by failures, fewest first, in their own order among equals."""
        return sorted(peers, key=self.of)


@dataclass(slots=True)
class CatchUp:
    """The plan of one catch-up from ``applied_height`` to ``target_height``."""

    applied_height: int
    target_height: int
    target_state_root: bytes
    peers: tuple[int, ...]
    genesis: Genesis
    verify: Verify
    chunk_blocks: int = 64
    max_parallel: int = 4
    max_bytes_in_flight: int = 64 * 1024 * 1024
    faults: list[tuple[int, str]] = field(default_factory=list)
    _missing: list[tuple[int, int]] = field(default_factory=list)
    _outstanding: list[FetchRequest] = field(default_factory=list)
    _verified: dict[int, VerifiedBlock] = field(default_factory=dict)
    _next_peer: int = 0
    _excluded: set[int] = field(default_factory=set)
    failures: PeerFailures = field(default_factory=PeerFailures)
    """Shared with the catch-up's other fetchers (``_pick_peer``)."""

    def __post_init__(self) -> None:
        if not self.peers:
            raise ValueError("catch-up needs at least one peer")
        first = self.applied_height + 1
        for start in range(first, self.target_height + 1, self.chunk_blocks):
            self._missing.append((start, min(start + self.chunk_blocks - 1, self.target_height)))

    @property
    def done(self) -> bool:
        return self.applied_height >= self.target_height

    @property
    def stalled(self) -> bool:
        """Every peer was excluded for faults: nobody left to ask."""
        return len(self._excluded) >= len(self.peers)

    def next_requests(self) -> list[FetchRequest]:
        """New requests to send now (each range is asked of one peer at a time)."""
        requests: list[FetchRequest] = []
        window_top = self.applied_height + self.chunk_blocks * self.max_parallel
        per_request_bytes = max(1, self.max_bytes_in_flight // self.max_parallel)
        while (
            self._missing
            and len(self._outstanding) < self.max_parallel
            and self._missing[0][0] <= window_top
            and not self.stalled
        ):
            first, last = self._missing.pop(0)
            request = FetchRequest(self._pick_peer(), first, last, per_request_bytes)
            self._outstanding.append(request)
            requests.append(request)
        return requests

    def _pick_peer(self) -> int:
        """The next peer in turn among those not excluded with the fewest failures
        (``PeerFailures``)."""
        candidates = [peer for peer in self.peers if peer not in self._excluded]
        if not candidates:
            return self.peers[0]
        fewest = min(map(self.failures.of, candidates))
        for _ in range(len(self.peers)):
            peer = self.peers[self._next_peer % len(self.peers)]
            self._next_peer += 1
            if peer not in self._excluded and self.failures.of(peer) == fewest:
                return peer
        raise AssertionError("a candidate with the fewest failures is always in the rotation")

    def on_failure(self, request: FetchRequest, detail: str) -> None:
        """The request failed (timeout, lost link): ask its range again, of the next peer."""
        self._outstanding.remove(request)
        self.faults.append((request.peer, detail))
        self.failures.failed(request.peer)
        self._missing.insert(0, (request.first_height, request.last_height))

    def on_reply(self, request: FetchRequest, blocks: list[bytes]) -> None:
        """A reply: a prefix of the asked range. A bad block excludes its peer."""
        self._outstanding.remove(request)
        height = request.first_height
        for data in blocks[: request.last_height - request.first_height + 1]:
            checked = verify_certified_block(
                data, height, self.genesis, self.verify, served_by=request.peer
            )
            if isinstance(checked, str):
                self.faults.append((request.peer, checked))
                self._excluded.add(request.peer)
                break
            if height > self.applied_height:
                self._verified[height] = checked
            height += 1
        if height > request.first_height:
            self.failures.answered(request.peer)
        if height <= request.last_height:
            if not blocks and request.peer not in self._excluded:
                self.faults.append((request.peer, "empty reply"))
                self._excluded.add(request.peer)
            self._missing.insert(0, (height, request.last_height))
            self._missing.sort()

    def ready(self) -> list[VerifiedBlock]:
        """The verified blocks that come next, in height order (the caller applies them)."""
        out: list[VerifiedBlock] = []
        while self.applied_height + 1 in self._verified:
            block = self._verified.pop(self.applied_height + 1)
            out.append(block)
            self.applied_height += 1
        return out
