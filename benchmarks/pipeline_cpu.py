"""CPU per tx of each step a validator takes for a tx, in one process: admission,
gossip and PRE-PREPARE decoding, execution with its synced commit, and the
mempool rebuild after each block (issue 9, node CPU per attest and per transfer).

    PYTHONPATH=OLD python -m benchmarks.pipeline_cpu attest --label old &
    PYTHONPATH=NEW python -m benchmarks.pipeline_cpu attest --label new; wait
    python -m benchmarks.pipeline_cpu transfer --fixture F   # F from execute_cpu make

A node's pipeline without its sockets and event loop: the txs are admitted
into a ``node.mempool.Mempool`` over a ``LevelDBStore`` snapshot (a transfer's
range proof is taken as verified, as the proof pool would answer), fed to the
core as requests, carried in a PRE-PREPARE and a gossip frame (encoded and
decoded), executed as the node does (``node.app.LedgerApp``: ``execute_batch``
with the mempool's caches, then one synced ``commit_block``), and
the mempool rebuilt over the new snapshot with ``--backlog`` blocks of txs
still pending, as under load. Process CPU time per tx of each step is printed,
median over the blocks; the total is what one validator spends on a tx it
admitted itself (the three others decode it from gossip instead of from a
client: the same admission). Run two revisions at once to compare them under
the same machine load; the attests are signed from fixed seeds, so both runs
see the same bytes.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import pickle
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from consensus.actions import Execute
from consensus.certificate import CommitCertificate
from consensus.messages import PrePrepare, ProposalMetadata, Request
from consensus.wire import decode_message, encode_message
from ledger.build import build_attest
from ledger.chain import commit_genesis
from ledger.genesis import DEFAULT_PARAMS, AssetInfo, Genesis, MemberInfo, ValidatorInfo
from ledger.identity import SigningIdentity
from ledger.leveldb_store import LevelDBStore
from ledger.proof_cache import ProofCache
from ledger.stateless_cache import StatelessCache
from node.app import LedgerApp
from node.mempool import Mempool, MempoolLimits, ProofWanted, check_balances
from node.peer_frames import ConsensusFrame, TxsFrame, decode_frame_body, encode_frame
from node.services import Accepted
from privacy.memo import memo_public_key

GENESIS_TIME_MS = 1_700_000_000_000
STEPS = ("check", "admit", "feed", "wire", "execute", "rebuild")
GOSSIP_CHUNK = 88
"""Txs a ``check_ahead`` call gets, as from one gossip chunk: the devnet's mean
signature batch under attest load (``veil_signature_batch_size``, 27,592 / 316)."""


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"veil-pipeline/" + label.encode()).digest()


def attest_chain(banks: int, attests: int) -> tuple[Genesis, list[bytes]]:
    """A genesis of ``banks`` member banks and ``attests`` attests, round-robin over them."""
    identities = [SigningIdentity.from_seed(_seed(f"bank-{i}")) for i in range(banks)]
    validators = [SigningIdentity.from_seed(_seed(f"validator-{i}")) for i in range(4)]
    genesis = Genesis(
        version=1,
        chain_name="veil-pipeline",
        genesis_time_ms=GENESIS_TIME_MS,
        validators=tuple(
            ValidatorInfo(f"v{i}", v.public_key, "", "") for i, v in enumerate(validators)
        ),
        members=tuple(
            MemberInfo(f"Bank{i}", b.public_key, memo_public_key(_seed(f"memo-{i}")))
            for i, b in enumerate(identities)
        ),
        accounts=(),
        assets=(AssetInfo(_seed("asset"), "USD", identities[0].public_key),),
        auditor_memo_public_key=memo_public_key(_seed("auditor")),
        params=DEFAULT_PARAMS,
    )
    chain_id = genesis.chain_id
    payloads = [
        build_attest(
            identities[n % banks],
            chain_id,
            "invoice",
            _seed(f"doc-{n}"),
            nonce=n // banks + 1,
        ).encode()
        for n in range(attests)
    ]
    return genesis, payloads


class Pipeline:
    """One validator's store, caches and mempool; ``run`` times each step per block."""

    def __init__(self, directory: Path, genesis: Genesis) -> None:
        self.genesis = genesis
        self.store = LevelDBStore(directory)
        commit_genesis(self.store, genesis)
        self.proof_cache = ProofCache()
        self.stateless = StatelessCache()
        limits = MempoolLimits(max_txs=1_000_000, account_txs_per_window=1_000_000)
        self.mempool = Mempool(
            self.store.snapshot(),
            genesis,
            self.proof_cache,
            limits,
            stateless_cache=self.stateless,
        )
        self.now_ms = GENESIS_TIME_MS
        self.app = LedgerApp(self.store, genesis, self.proof_cache, self.stateless)

    def check(self, payloads: Sequence[bytes]) -> None:
        """Decode the txs and check their signatures in batches, as ``NodeRuntime.on_peer_txs``
        does for each chunk of a gossip frame before admitting its txs one by one."""
        for start in range(0, len(payloads), GOSSIP_CHUNK):
            chunk = payloads[start : start + GOSSIP_CHUNK]
            self.mempool.check_ahead(chunk, self.now_ms, from_client=False)

    def admit(self, payloads: Sequence[bytes]) -> None:
        """Admit ``payloads`` as one proof batch: the runtime's ``_verify_admission_batch``
        checks the batch's balance proofs together, then settles each admission."""
        wanted: list[ProofWanted] = []
        for payload in payloads:
            outcome = self.mempool.admit(payload, self.now_ms, from_client=False)
            if isinstance(outcome, ProofWanted):
                wanted.append(outcome)
            elif not isinstance(outcome, Accepted):
                raise RuntimeError(f"pipeline tx not admitted: {outcome}")
        for admission, balanced in zip(wanted, check_balances(wanted), strict=True):
            outcome = self.mempool.finish(admission, proof_ok=True, balanced=balanced)
            if not isinstance(outcome, Accepted):
                raise RuntimeError(f"pipeline tx not admitted: {outcome}")

    def wire(self, requests: tuple[Request, ...]) -> None:
        """The primary's PRE-PREPARE and an admitting node's gossip, encoded and decoded."""
        height = self.store.height() + 1
        message = PrePrepare(0, height, bytes(32), requests, ProposalMetadata(self.now_ms, 0), 0)
        frame = encode_frame(ConsensusFrame(encode_message(message)))
        decoded = decode_frame_body(frame[4:], max_bytes=1 << 26)
        if not isinstance(decoded, ConsensusFrame):
            raise RuntimeError("not a consensus frame")
        decode_message(decoded.payload)
        gossip = encode_frame(TxsFrame(tuple(r.payload for r in requests)))
        decode_frame_body(gossip[4:], max_bytes=1 << 26)

    def execute(self, requests: tuple[Request, ...]) -> None:
        """What the node's worker runs for a committed batch (``LedgerApp.execute``)."""
        height = self.store.height() + 1
        self.now_ms += 100
        certificate = CommitCertificate(0, height, bytes(32), ())
        metadata = ProposalMetadata(self.now_ms, 0)
        applied = self.app.execute(Execute(height, requests, metadata, certificate))
        if applied.rejected:
            raise RuntimeError(f"pipeline tx rejected: {applied.rejected[0].reason_code}")
        # As the runtime's _after_block does; absent before 'note_committed' (and its
        # written keys) existed, so that the same file times older revisions.
        note = getattr(self.mempool, "note_committed", None)
        written = getattr(applied, "state_writes", None)
        if note is not None and written is not None:
            note(height, applied.tx_ids, written)
        elif note is not None:
            note(height, applied.tx_ids)

    def rebuild(self) -> None:
        dropped = self.mempool.on_block(self.store.snapshot())
        if dropped:
            raise RuntimeError(f"pipeline tx dropped by the rebuild: {dropped[0][1]}")


def _one_block(pipeline: Pipeline, upcoming: Sequence[bytes], txs: int) -> dict[str, float]:
    """Admit the next block's txs, then carry ``txs`` pending ones through the rest;
    CPU seconds per tx of each step."""
    times: dict[str, float] = {}
    for name, admission in (("check", pipeline.check), ("admit", pipeline.admit)):
        start = time.process_time()
        admission(upcoming)
        times[name] = (time.process_time() - start) / len(upcoming)
    start = time.process_time()
    requests = pipeline.mempool.take_unfed(txs)
    times["feed"] = (time.process_time() - start) / txs
    steps: tuple[tuple[str, Callable[[], None]], ...] = (
        ("wire", functools.partial(pipeline.wire, requests)),
        ("execute", functools.partial(pipeline.execute, requests)),
        ("rebuild", pipeline.rebuild),
    )
    for name, step in steps:
        start = time.process_time()
        step()
        times[name] = (time.process_time() - start) / txs
    return times


def run(
    genesis: Genesis,
    payloads: Sequence[bytes],
    block_txs: int,
    backlog_blocks: int,
    setup: Sequence[bytes] = (),
) -> dict[str, list[float]]:
    """CPU seconds per tx of each step, one sample per block that had a backlog;
    ``setup`` (a transfer's issues) is committed first, untimed."""
    samples: dict[str, list[float]] = {step: [] for step in STEPS}
    blocks = [payloads[i : i + block_txs] for i in range(0, len(payloads), block_txs)]
    with tempfile.TemporaryDirectory(prefix="veil-pipeline-") as directory:
        pipeline = Pipeline(Path(directory), genesis)
        if setup:
            pipeline.admit(setup)
            pipeline.execute(pipeline.mempool.take_unfed(len(setup)))
            pipeline.rebuild()
        for block in blocks[:backlog_blocks]:
            pipeline.check(block)
            pipeline.admit(block)
        for k, block in enumerate(blocks):
            upcoming = blocks[k + backlog_blocks] if k + backlog_blocks < len(blocks) else []
            if upcoming:
                for step, seconds in _one_block(pipeline, upcoming, len(block)).items():
                    samples[step].append(seconds)
            else:
                requests = pipeline.mempool.take_unfed(len(block))
                pipeline.execute(requests)
                pipeline.rebuild()
        pipeline.store.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("attest", "transfer"))
    parser.add_argument("--fixture", type=Path, help="execute_cpu make's file (transfers)")
    parser.add_argument("--txs", type=int, default=4096, help="attests to sign")
    parser.add_argument("--block-txs", type=int, default=256)
    parser.add_argument("--backlog", type=int, default=2, help="blocks pending beyond the next")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    if args.kind == "attest":
        genesis, payloads = attest_chain(4, args.txs)
        samples = run(genesis, payloads, args.block_txs, args.backlog)
    else:
        if args.fixture is None:
            parser.error("transfer needs --fixture (python -m benchmarks.execute_cpu make F)")
        data = pickle.loads(args.fixture.read_bytes())  # our own fixture (execute_cpu make)
        samples = transfer_samples(data, args.block_txs, args.backlog)
    medians = {step: statistics.median(v) * 1e6 for step, v in samples.items()}
    parts = " ".join(f"{step} {us:.1f}" for step, us in medians.items())
    print(f"{args.label} us/tx: {parts} total {sum(medians.values()):.1f}")


def transfer_samples(
    data: dict[str, object], block_txs: int, backlog_blocks: int
) -> dict[str, list[float]]:
    """``run`` over the fixture's transfers, after its issues (not timed) are committed."""
    genesis = data["genesis"]
    issues = data["issues"]
    transfers = data["transfers"]
    if not isinstance(genesis, Genesis) or not isinstance(issues, list):
        raise TypeError("not an execute_cpu fixture")
    if not isinstance(transfers, list):
        raise TypeError("not an execute_cpu fixture")
    return run(genesis, transfers, block_txs, backlog_blocks, setup=issues)


if __name__ == "__main__":
    main()
