"""Loan benchmarks (issue 11).

``python -m benchmarks.loan_bench [--loans 128] [--runs 5]``

* ``exposure``: client 0, with ``--loans``/16 active loans (8 by default); CPU
  time to make and to verify the exposure proof against the state (targets: ≤ 150 ms, ≤ 40 ms).
* ``accrue``: validate and apply (``apply_block``) a block of ``--loans``
  ``loan_accrue`` txs, one per loan, on a ``MemoryStore``.
* ``disk``: the same block committed to a ``LevelDBStore`` (synced, compacted):
  bytes on disk per accrual, and per origination.

Setup (not timed): the fixture of ``benchmarks.ledger_bench`` (one bank, 16
clients); the bank lends to the clients in turn. Making the proofs takes a few
minutes of CPU in pure Python.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.ledger_bench import GENESIS_TIME_MS, Fixture, _dir_bytes, _metadata_of
from ledger.apply import apply_block, commit_applied
from ledger.batch import BlockMetadata
from ledger.block import Block
from ledger.build import OutputPlan, build_issue
from ledger.chain import commit_genesis
from ledger.execute import execute_batch
from ledger.exposure import exposure_problem, prove_exposure
from ledger.leveldb_store import LevelDBStore
from ledger.loan_build import LoanKeys, build_accrue, build_originate
from ledger.store import KeyValueStore, MemoryStore
from ledger.tx import LoanTerms
from privacy.memo import Opening, memo_public_key

TERMS = LoanTerms(rate_bps=125, period_blocks=1, maturity_height=1_000, purpose="bench")


class LoanFixture:
    """Issue blocks, then ``loans`` originations, then one accrual per loan."""

    def __init__(self, loans: int) -> None:
        base = Fixture(0)
        self.base = base
        bank_memo = memo_public_key(base.bank_memo)
        auditor = memo_public_key(base.auditor_memo)
        self.issues = []
        for n in range((loans + 15) // 16):
            plans = [OutputPlan(base.bank.public_key, bank_memo, 10_000) for _ in range(16)]
            self.issues.append(
                build_issue(base.bank, base.chain_id, base.asset, plans, auditor, nonce=n + 1)
            )
        self.originations = []
        self.openings: dict[bytes, Opening] = {}
        consent_nonces = [0] * len(base.clients)
        for k in range(loans):
            client = k % len(base.clients)
            consent_nonces[client] += 1
            issue = self.issues[k // 16]
            keys = LoanKeys(bank_memo, memo_public_key(base.client_memos[client]), auditor)
            built = build_originate(
                base.bank,
                base.clients[client],
                base.chain_id,
                asset=base.asset,
                amount=1_000 + k,
                terms=TERMS,
                inputs=[(issue.output_ids()[k % 16], issue.openings[k % 16])],
                keys=keys,
                consent_nonce=consent_nonces[client],
            )
            self.originations.append(built.built)
            self.openings[built.built.tx_id] = built.outstanding
        self.accruals = []
        for k, loan in enumerate(self.originations):
            client = k % len(base.clients)
            keys = LoanKeys(bank_memo, memo_public_key(base.client_memos[client]), auditor)
            self.accruals.append(
                build_accrue(
                    base.bank,
                    base.chain_id,
                    loan_id=loan.tx_id,
                    period=1,
                    rate_bps=TERMS.rate_bps,
                    outstanding=self.openings[loan.tx_id],
                    keys=keys,
                ).built
            )

    def commit(self, store: KeyValueStore, txs: list[bytes]) -> Block:
        height = store.height() + 1
        metadata = BlockMetadata(GENESIS_TIME_MS + height, 0)
        executed = execute_batch(store, self.base.genesis, height, txs, metadata)
        if executed.rejected:
            raise RuntimeError(f"benchmark txs rejected: {executed.rejected[0].reason}")
        block = executed.block
        result = apply_block(store, block, self.base.genesis)
        commit_applied(store, block, result, certificate=b"", metadata=_metadata_of(block))
        return block

    def prepare(self, store: KeyValueStore) -> Block:
        """Genesis, issues and originations committed; the accrual block returned."""
        commit_genesis(store, self.base.genesis)
        self.commit(store, [t.encode() for t in self.issues])
        self.commit(store, [t.encode() for t in self.originations])
        height = store.height() + 1
        metadata = BlockMetadata(GENESIS_TIME_MS + height, 0)
        executed = execute_batch(
            store, self.base.genesis, height, [t.encode() for t in self.accruals], metadata
        )
        if executed.rejected:
            raise RuntimeError(f"accrual rejected: {executed.rejected[0].reason}")
        return executed.block


def _cpu(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()  # type: ignore[operator]
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000


def bench_exposure(fixture: LoanFixture, store: MemoryStore, runs: int) -> dict[str, float]:
    base = fixture.base
    borrower = base.clients[0].public_key
    openings = {
        tx.tx_id: fixture.openings[tx.tx_id]
        for tx in fixture.originations[:: len(base.clients)]  # client 0's loans
    }
    limit = sum(o.value for o in openings.values())
    proof = prove_exposure(store, base.chain_id, borrower, limit, openings=openings)
    if exposure_problem(store, base.chain_id, proof):
        raise RuntimeError("the exposure proof does not verify")

    def prove() -> None:
        prove_exposure(store, base.chain_id, borrower, limit, openings=openings)

    def verify() -> None:
        exposure_problem(store, base.chain_id, proof)

    return {
        "loans": len(proof.loan_ids),
        "prove_ms": _cpu(prove, runs),
        "verify_ms": _cpu(verify, runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.loans % 16:
        parser.error("--loans must be a multiple of 16 (client 0 has --loans/16 loans)")
    start = time.perf_counter()
    fixture = LoanFixture(args.loans)
    print(f"setup: {time.perf_counter() - start:.0f} s to build {args.loans} loans and accruals")
    store = MemoryStore()
    block = fixture.prepare(store)
    exposure = bench_exposure(fixture, store, args.runs)
    print(
        f"exposure proof, {exposure['loans']:.0f} active loans: "
        f"prove {exposure['prove_ms']:.1f} ms "
        f"(target <= 150), verify {exposure['verify_ms']:.1f} ms (target <= 40) CPU"
    )

    def apply() -> None:
        apply_block(store, block, fixture.base.genesis)

    apply_ms = _cpu(apply, args.runs)
    count = len(block.txs)
    print(
        f"validate+apply a block of {count} loan_accrue: {apply_ms:.0f} ms CPU "
        f"({apply_ms / count:.2f} ms per tx)"
    )
    with tempfile.TemporaryDirectory(prefix="veil-loan-bench-") as tmp:
        path = Path(tmp) / "db"
        with LevelDBStore(path) as disk:
            disk_block = fixture.prepare(disk)
            result = apply_block(disk, disk_block, fixture.base.genesis)
            disk.backend.compact()
            before = _dir_bytes(path)
            commit_applied(
                disk,
                disk_block,
                result,
                certificate=b"\x00" * 300,
                metadata=_metadata_of(disk_block),
            )
            disk.backend.compact()
            after = _dir_bytes(path)
    tx_bytes = sum(len(tx.encode()) for tx in block.txs) / count
    origination_bytes = sum(len(t.encode()) for t in fixture.originations) / count
    print(
        f"LevelDB (sync, compacted): {(after - before) / count:.0f} B on disk per loan_accrue, "
        f"tx encoding {tx_bytes:.0f} B; a loan_originate encodes to {origination_bytes:.0f} B"
    )


if __name__ == "__main__":
    main()
