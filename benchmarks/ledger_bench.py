"""Ledger benchmark: validate + apply a block of 128 two-output confidential transfers.

Run: ``.venv/bin/python -m benchmarks.ledger_bench [--runs 7] [--txs 128]``

Measures, on one chain built once (the proofs take a while to make):

* ``apply``: ``decode_block`` + ``apply_block`` on a ``MemoryStore`` holding the
  inputs (nothing is committed, so every run sees the same state), split into
  the one ``batch_verify`` call and everything else (decoding, signatures,
  excess proofs, state reads and writes, state-root preview). Median of
  ``--runs`` runs. Targets: total ≤ 400 ms, other ≤ 60 ms.
* ``disk``: the same block committed to a ``LevelDBStore`` (one synced write
  batch), directory size growth after a full compaction, per transfer; plus the
  live key+value bytes it added and the encoded tx size. Target ≤ 2.5 KiB.
* ``disk past the history window``: the bytes a transfer still holds once its
  block is older than the state history (``DEFAULT_STATE_HISTORY_HEIGHTS``):
  two stores, one committing the transfer block and one an empty block in its
  place, each followed by window + 1 empty blocks; the difference per transfer,
  of each store's live data written afresh (what compaction converges to; see
  ``_rewritten_bytes``). This is what a long chain keeps per transfer, since the
  undo log of the last window of heights is a bounded amount whatever the
  chain's length.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ledger.apply import apply_block, commit_applied
from ledger.batch import BlockMetadata
from ledger.block import Block, decode_block
from ledger.build import BuiltTx, OutputPlan, build_issue, build_transfer
from ledger.chain import commit_genesis
from ledger.execute import execute_batch
from ledger.genesis import (
    DEFAULT_PARAMS,
    AccountInfo,
    AssetInfo,
    Genesis,
    MemberInfo,
    ValidatorInfo,
)
from ledger.identity import SigningIdentity
from ledger.leveldb_store import LevelDBBackend, LevelDBStore
from ledger.state_history import DEFAULT_STATE_HISTORY_HEIGHTS
from ledger.store import KeyValueStore, MemoryStore
from privacy.memo import memo_public_key
from privacy.rangeproof import RangeStatement, batch_verify

CLIENTS = 16
ISSUE_OUTPUTS = 16
GENESIS_TIME_MS = 1_700_000_000_000


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"veil-bench/" + label.encode()).digest()


class Fixture:
    """A genesis with one issuing bank and 16 clients, the issue blocks and the transfers."""

    def __init__(self, transfers: int) -> None:
        self.bank = SigningIdentity.from_seed(_seed("bank"))
        self.bank_memo = _seed("bank-memo")
        self.clients = [SigningIdentity.from_seed(_seed(f"client-{i}")) for i in range(CLIENTS)]
        self.client_memos = [_seed(f"client-memo-{i}") for i in range(CLIENTS)]
        self.auditor_memo = _seed("auditor-memo")
        self.asset = _seed("asset")
        validators = [SigningIdentity.from_seed(_seed(f"validator-{i}")) for i in range(4)]
        self.genesis = Genesis(
            version=1,
            chain_name="veil-bench",
            genesis_time_ms=GENESIS_TIME_MS,
            validators=tuple(
                ValidatorInfo(f"v{i}", v.public_key, "", "") for i, v in enumerate(validators)
            ),
            members=(MemberInfo("Bank", self.bank.public_key, memo_public_key(self.bank_memo)),),
            accounts=tuple(
                AccountInfo(c.public_key, memo_public_key(m), self.bank.public_key)
                for c, m in zip(self.clients, self.client_memos, strict=True)
            ),
            assets=(AssetInfo(self.asset, "USD", self.bank.public_key),),
            auditor_memo_public_key=memo_public_key(self.auditor_memo),
            params=DEFAULT_PARAMS,
        )
        self.chain_id = self.genesis.chain_id
        auditor_key = memo_public_key(self.auditor_memo)
        self.issues: list[BuiltTx] = []
        for n in range((transfers + ISSUE_OUTPUTS - 1) // ISSUE_OUTPUTS):
            plans = [
                OutputPlan(self.clients[i].public_key, memo_public_key(self.client_memos[i]), 1000)
                for i in range(ISSUE_OUTPUTS)
            ]
            self.issues.append(
                build_issue(self.bank, self.chain_id, self.asset, plans, auditor_key, nonce=n + 1)
            )
        self.transfers: list[BuiltTx] = []
        for k in range(transfers):
            issue, index = self.issues[k // ISSUE_OUTPUTS], k % ISSUE_OUTPUTS
            sender, recipient = index, (index + 1) % CLIENTS
            plans = [
                OutputPlan(
                    self.clients[recipient].public_key,
                    memo_public_key(self.client_memos[recipient]),
                    300,
                ),
                OutputPlan(
                    self.clients[sender].public_key, memo_public_key(self.client_memos[sender]), 700
                ),
            ]
            self.transfers.append(
                build_transfer(
                    self.clients[sender],
                    memo_public_key(self.client_memos[sender]),
                    self.chain_id,
                    asset=self.asset,
                    inputs=[(issue.output_ids()[index], issue.openings[index])],
                    plans=plans,
                    auditor_memo_key=auditor_key,
                )
            )

    def prepare(self, store: KeyValueStore) -> Block:
        """Commit genesis and the issues to ``store``; return the (uncommitted) transfer block."""
        commit_genesis(store, self.genesis)
        self.commit(store, [t.encode() for t in self.issues])
        return self._propose(store, [t.encode() for t in self.transfers])

    def _propose(self, store: KeyValueStore, txs: Sequence[bytes]) -> Block:
        height = store.height() + 1
        metadata = BlockMetadata(GENESIS_TIME_MS + height, 0)
        executed = execute_batch(store, self.genesis, height, txs, metadata)
        if executed.rejected:
            raise RuntimeError(f"benchmark txs rejected: {executed.rejected[0].reason}")
        return executed.block

    def commit(self, store: KeyValueStore, txs: Sequence[bytes]) -> None:
        block = self._propose(store, txs)
        commit_applied(
            store,
            block,
            apply_block(store, block, self.genesis),
            certificate=b"",
            metadata=_metadata_of(block),
        )


def _metadata_of(block: Block) -> BlockMetadata:
    return BlockMetadata(block.header.timestamp_ms, block.header.view)


class _TimedBatch:
    """Wraps ``batch_verify`` as ``ledger.apply`` calls it, to time it inside the same run."""

    def __init__(self, inner: Callable[[Sequence[RangeStatement]], list[int]]) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.calls = 0

    def __call__(self, statements: Sequence[RangeStatement]) -> list[int]:
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            return self.inner(statements)
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu_start
            self.calls += 1


def bench_apply(fixture: Fixture, runs: int) -> dict[str, float]:
    store = MemoryStore()
    block = fixture.prepare(store)
    raw = block.encode()
    wall: dict[str, list[float]] = {"total": [], "batch": [], "other": []}
    cpu: dict[str, list[float]] = {"total": [], "batch": [], "other": []}
    for _ in range(runs):
        timer = _TimedBatch(batch_verify)
        start, cpu_start = time.perf_counter(), time.process_time()
        apply_block(store, decode_block(raw), fixture.genesis, range_verifier=timer)
        total, cpu_total = time.perf_counter() - start, time.process_time() - cpu_start
        if timer.calls != 1:
            raise RuntimeError(f"expected one batch_verify call, saw {timer.calls}")
        for samples, t, b in ((wall, total, timer.seconds), (cpu, cpu_total, timer.cpu_seconds)):
            samples["total"].append(t)
            samples["batch"].append(b)
            samples["other"].append(t - b)
    result: dict[str, float] = {"block_bytes": len(raw), "txs": len(block.txs)}
    for name in ("total", "batch", "other"):
        result[f"{name}_ms"] = statistics.median(wall[name]) * 1000
        result[f"{name}_min_ms"] = min(wall[name]) * 1000
        result[f"{name}_cpu_ms"] = statistics.median(cpu[name]) * 1000
    return result


def bench_execute(fixture: Fixture, runs: int) -> dict[str, float]:
    """``execute_batch`` of the transfers as one consensus batch (the primary's and every
    replica's side), split like ``bench_apply``: the one batch verification and the rest."""
    store = MemoryStore()
    block = fixture.prepare(store)
    payloads = [tx.encode() for tx in block.txs]
    metadata = BlockMetadata(block.header.timestamp_ms, block.header.view)
    totals: list[float] = []
    others: list[float] = []
    cpu_totals: list[float] = []
    cpu_others: list[float] = []
    for _ in range(runs):
        timer = _TimedBatch(batch_verify)
        start, cpu_start = time.perf_counter(), time.process_time()
        executed = execute_batch(
            store, fixture.genesis, store.height() + 1, payloads, metadata, range_verifier=timer
        )
        total, cpu_total = time.perf_counter() - start, time.process_time() - cpu_start
        if timer.calls != 1 or executed.rejected or executed.block != block:
            raise RuntimeError("execute_batch did not rebuild the benchmark block in one pass")
        totals.append(total)
        others.append(total - timer.seconds)
        cpu_totals.append(cpu_total)
        cpu_others.append(cpu_total - timer.cpu_seconds)
    return {
        "total_ms": statistics.median(totals) * 1000,
        "other_ms": statistics.median(others) * 1000,
        "total_cpu_ms": statistics.median(cpu_totals) * 1000,
        "other_cpu_ms": statistics.median(cpu_others) * 1000,
    }


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _live_bytes(store: LevelDBStore) -> int:
    return sum(len(k) + len(v) for k, v in store.backend.iterate(b""))


def bench_disk(fixture: Fixture) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="veil-ledger-bench-") as tmp:
        path = Path(tmp) / "db"
        with LevelDBStore(path) as store:
            block = fixture.prepare(store)
            result = apply_block(store, block, fixture.genesis)
            store.backend.compact()
            before, live_before = _dir_bytes(path), _live_bytes(store)
            commit_applied(
                store, block, result, certificate=b"\x00" * 300, metadata=_metadata_of(block)
            )
            store.backend.compact()
            after, live_after = _dir_bytes(path), _live_bytes(store)
    count = len(block.txs)
    tx_bytes = sum(len(tx.encode()) for tx in block.txs) / count
    return {
        "disk_bytes_per_tx": (after - before) / count,
        "live_bytes_per_tx": (live_after - live_before) / count,
        "tx_bytes": tx_bytes,
    }


def _rewritten_bytes(store: LevelDBStore, path: Path) -> int:
    """Table bytes of ``store``'s live keys written afresh with the same options.

    ``compact_range`` never rewrites the tables of the deepest level that holds
    files, so the deleted undo entries and replaced state nodes inside them stay
    on disk until later writes push a compaction through them: a freshly written
    copy is what that garbage collection converges to."""
    copy = LevelDBBackend(path)
    try:
        copy.write(list(store.backend.iterate(b"")))
        copy.compact()
    finally:
        copy.close()
    return _dir_bytes(path)


def _commit_then_empty_blocks(
    fixture: Fixture, tmp: Path, name: str, first: Sequence[bytes], window: int
) -> tuple[int, int, int]:
    """(compacted, rewritten, live) bytes after committing ``first`` then window + 1
    empty blocks to a store keeping ``window`` heights of state history."""
    path = tmp / name
    empty_blocks = window + 1
    with LevelDBStore(path, history_heights=window) as store:
        fixture.prepare(store)
        fixture.commit(store, first)
        for done in range(empty_blocks):
            fixture.commit(store, [])
            if (done + 1) % 256 == 0:
                print(f"  {name}: {done + 1}/{empty_blocks} empty blocks", flush=True)
        store.backend.compact()
        compacted = _dir_bytes(path)
        return compacted, _rewritten_bytes(store, tmp / f"{name}-rewritten"), _live_bytes(store)


def bench_disk_past_history(
    fixture: Fixture, window: int = DEFAULT_STATE_HISTORY_HEIGHTS
) -> dict[str, float]:
    """Bytes per transfer once the transfer block has left the state history window."""
    txs = [t.encode() for t in fixture.transfers]
    with tempfile.TemporaryDirectory(prefix="veil-ledger-bench-") as tmp:
        with_transfers = _commit_then_empty_blocks(fixture, Path(tmp), "transfers", txs, window)
        without = _commit_then_empty_blocks(fixture, Path(tmp), "empty", [], window)
    compacted, rewritten, live = (
        (a - b) / len(txs) for a, b in zip(with_transfers, without, strict=True)
    )
    return {
        "empty_blocks": window + 1,
        "compacted_bytes_per_tx": compacted,
        "rewritten_bytes_per_tx": rewritten,
        "live_bytes_per_tx": live,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--txs", type=int, default=128)
    args = parser.parse_args()
    start = time.perf_counter()
    fixture = Fixture(args.txs)
    print(f"built {args.txs} transfers in {time.perf_counter() - start:.1f} s")
    apply = bench_apply(fixture, args.runs)
    print(
        f"validate+apply block of {apply['txs']:.0f} two-output transfers "
        f"({apply['block_bytes'] / 1024:.0f} KiB), {args.runs} runs "
        "(targets: total <= 400 ms, other <= 60 ms):"
    )
    for name in ("total", "batch", "other"):
        label = {"total": "total", "batch": "batch verify", "other": "everything else"}[name]
        print(
            f"  {label:<16} median {apply[f'{name}_ms']:7.1f} ms wall, "
            f"min {apply[f'{name}_min_ms']:7.1f} ms, median {apply[f'{name}_cpu_ms']:7.1f} ms CPU"
        )
    execute = bench_execute(fixture, args.runs)
    print(
        f"execute_batch of the same {apply['txs']:.0f} requests: median "
        f"{execute['total_ms']:.1f} ms wall ({execute['total_cpu_ms']:.1f} ms CPU), of which "
        f"{execute['other_ms']:.1f} ms wall ({execute['other_cpu_ms']:.1f} ms CPU) outside "
        "the one batch verification"
    )
    disk = bench_disk(fixture)
    print(
        f"LevelDB (sync, compacted): {disk['disk_bytes_per_tx']:.0f} B on disk per transfer, "
        f"{disk['live_bytes_per_tx']:.0f} B live keys+values, tx encoding "
        f"{disk['tx_bytes']:.0f} B (target <= 2560 B on disk)"
    )
    past = bench_disk_past_history(fixture)
    print(
        f"LevelDB past the state history ({past['empty_blocks']:.0f} empty blocks later): "
        f"{past['rewritten_bytes_per_tx']:.0f} B on disk per transfer with the live data "
        f"rewritten ({past['compacted_bytes_per_tx']:.0f} B as compact_range leaves it), "
        f"{past['live_bytes_per_tx']:.0f} B live keys+values (target <= 2560 B on disk)"
    )


if __name__ == "__main__":
    main()
