"""The checks must be able to fail: feed them violations and watch them fire."""

from __future__ import annotations

import hashlib

from consensus.certificate import CommitCertificate
from consensus.messages import Commit, Prepare, ViewChange
from consensus.sim.checks import SafetyChecker
from consensus.sim.runner import CHAIN_ID, Simulation
from consensus.sim.scenario import build_scenario


def test_forged_conflicting_commit_is_an_agreement_violation() -> None:
    checker = SafetyChecker(CHAIN_ID, 4)
    checker.executed(1, 5, b"a" * 32, b"root-a", None)
    checker.executed(2, 5, b"a" * 32, b"root-a", None)
    assert checker.violations == []
    checker.executed(3, 5, b"b" * 32, b"root-b", None)
    assert checker.violations == [
        "agreement: replicas 1 and 3 executed different digests at 5",
        "total order: replicas 1 and 3 have different roots at 5",
    ]


def test_forged_certificate_is_caught() -> None:
    checker = SafetyChecker(CHAIN_ID, 4)
    fake = tuple(Commit(0, 1, b"d" * 32, s, b"\x00" * 16) for s in range(3))
    checker.executed(0, 1, b"d" * 32, b"root", CommitCertificate(0, 1, b"d" * 32, fake))
    assert checker.violations == ["certificate: replica 0 executed 1 without one"]


def test_honest_equivocation_is_caught() -> None:
    checker = SafetyChecker(CHAIN_ID, 4)
    checker.signed_by_honest(Prepare(0, 1, b"a" * 32, 2))
    checker.signed_by_honest(Prepare(0, 1, b"a" * 32, 2))
    checker.signed_by_honest(Prepare(1, 1, b"b" * 32, 2))  # another view: fine
    assert checker.violations == []
    checker.signed_by_honest(Prepare(0, 1, b"b" * 32, 2))
    vc = ViewChange(1, 0, bytes(32), (), (), 2)
    checker.signed_by_honest(vc)
    checker.signed_by_honest(ViewChange(1, 4, bytes(32), (), (), 2))
    assert len(checker.violations) == 2


def test_diverging_history_is_a_total_order_violation() -> None:
    checker = SafetyChecker(CHAIN_ID, 4)
    root = hashlib.sha256(b"x").digest()
    checker.state_root(0, 3, root)
    checker.state_root(1, 3, hashlib.sha256(b"y").digest())
    assert checker.violations == ["total order: replicas 0 and 1 have different roots at 3"]


class AmnesiacRestart(Simulation):
    """A runtime that breaks the persistence contract: it forgets every record."""

    def restart(self, index: int) -> None:
        self.storage[index].durable.clear()
        super().restart(index)


def test_breaking_the_persistence_contract_is_caught_and_keeping_it_is_safe() -> None:
    kinds = ("crash_restart", "drop", "equivocating_primary")
    # A seed whose run has a replica restart and then re-vote (the timing of
    # view changes decides which seeds do; 41 did before per-request deadlines).
    scenario = build_scenario(43, 4, kinds, every_kind=True)
    broken = AmnesiacRestart(scenario).run()
    assert any(v.startswith("equivocation: honest replica") for v in broken.safety_violations)
    honest = Simulation(build_scenario(43, 4, kinds, every_kind=True)).run()
    assert honest.safety_violations == []
    assert honest.liveness_failure is None
