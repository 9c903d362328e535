"""Every seed that ever failed, pinned forever (4 nodes, 300 fault ticks; `--faults all`
of the time, i.e. ORIGINAL_KINDS, unless listed with its own fault list below; none
of them ran through the wire codec).

What each one found:
  9, 24, 26, 54, 82, 96   a learner lacked the batch: the equivocating primary never sent it
                          the real one, so backups now relay the accepted pre-prepare
  131                     a new primary re-proposed inside NEW-VIEW's range (proposal while
                          adopting the checkpoint): an honest replica signed two pre-prepares
  19, 478                 a restarted replica had no checkpoint of its own and nobody
                          relayed the stable proof: the lagging replica never caught up
  817, 805                the byzantine lied about its commit to a replica outside the view;
                          certificates are now relayed and a sender may hold two digests
  387                     a flood of junk commits crowded out the relayed real one; eviction
                          now keeps the best-supported digest
  56, 97, 188             liveness failures of the same early builds (learner / relay gaps)
  4681                    (5000-seed run) a replica still in view 0 with no pending work
                          dropped view-1 pre-prepares as "future", so it could not execute
                          the view-1 commit certificate; batches of later views are now kept
  9437, 9884              (seeds 5000-9999 run) silent primary 0 plus an asymmetric partition:
                          replica 1 gave up on view 2 and moved to 3 before primary 2 had
                          its VIEW-CHANGE for 2; 2 and 3 waited for view 2 without a timer
                          (no 2f+1), 1 waited alone in 3: deadlock. A waiting replica now
                          resends its VIEW-CHANGEs for every view since it last ran one
  100118, 100228, 100245  (--faults partition_asymmetric,silent_primary,drop,crash_lose_unsynced)
                          replica 1 formed NEW-VIEW 1 but its sends were blocked, then timed
                          out to view 2; 2 and 3 waited for view 1 forever. A replica now
                          forwards the NEW-VIEW of the latest view it ran, even after moving
                          on, to any peer still asking for that view or an older one
  8803191 (n=4), 8801032 (n=7)  (issue 8 §1.9, their own fault lists below) a NEW-VIEW
                          re-issued a prepared batch whose request had committed at another
                          height, and the simulator demanded exactly-once ordering. Re-issuing
                          is correct PBFT: the application now skips the repeat
                          deterministically (as the ledger does) and the check is that every
                          honest replica executed the same requests at each height
  3045                    (5000-seed run at a3-sim 20974c4, ISSUE_8_KINDS; drop + long_outage)
                          after the outage the healed replica ran view 4 with nothing
                          pending while the others ran view 6, beyond its view_bound of 1:
                          it refused their COMMITs as absurd and sent nothing that made a
                          peer forward the NEW-VIEW, so it stayed one block behind for good.
                          Passes since a1-viewchange's STATUS messages (700438c)
  3427, 3810, 3811,       (same runs; long_outage with crashes or partitions) the same gap
  2843 (n=7)              after the long-outage probe crash, still there with STATUS: e.g. in
                          3427 r3 stayed at view 2 and height 4 while the others ran view 4
                          at height 5. r3 was active with nothing pending, so it sent no
                          VIEW-CHANGE or old PREPARE that would make a peer forward its
                          NEW-VIEW; its STATUS (view 2) was answered with view-4 COMMITs,
                          which it refused as absurd_view (view_bound 1). A STATUS from an
                          older view is now answered with the NEW-VIEW as well
"""

from __future__ import annotations

import pytest

from consensus.sim.runner import run_seed
from consensus.sim.scenario import FAULT_KINDS, build_scenario

ORIGINAL_KINDS = (
    *("delay", "drop", "duplicate", "reorder"),
    *("partition_symmetric", "partition_asymmetric", "isolate_primary", "split_2_2"),
    *("crash_restart", "crash_lose_unsynced", "lagging_replica"),
    *("equivocating_primary", "conflicting_votes", "bad_signatures", "replay_old_view"),
    *("huge_view", "silent_primary", "slow_primary"),
)
"""The kinds `--faults all` drew from when these seeds failed (issue 8's kinds came
later and would change what each seed draws)."""

FAILED_ONCE = [9, 19, 24, 26, 54, 56, 82, 96, 97, 131, 188, 387, 478, 805, 817, 4681, 9437, 9884]


STRESS_KINDS = ("partition_asymmetric", "silent_primary", "drop", "crash_lose_unsynced")
FAILED_ONCE_WITH_KINDS = [(100118, STRESS_KINDS), (100228, STRESS_KINDS), (100245, STRESS_KINDS)]


ISSUE_8_KINDS = (
    *ORIGINAL_KINDS[:11],
    "long_outage",
    *ORIGINAL_KINDS[11:],
    *("lying_view_change", "equivocating_new_view", "junk_pre_prepares", "oversized_fields"),
    *("censoring_primary", "wrong_checkpoint_root", "lying_state_source"),
)
"""`--faults all` when issue 8's kinds were added (before any later kinds)."""

FAILED_ONCE_ISSUE_8 = [(3045, 4), (3427, 4), (3810, 4), (3811, 4), (2843, 7)]


@pytest.mark.parametrize(("seed", "nodes"), FAILED_ONCE_ISSUE_8)
def test_seed_that_once_failed_with_issue_8_kinds(seed: int, nodes: int) -> None:
    result = run_seed(build_scenario(seed, nodes, ISSUE_8_KINDS, every_kind=False))
    assert result.safety_violations == []
    assert result.liveness_failure is None


def test_original_kinds_still_exist() -> None:
    assert set(ISSUE_8_KINDS) <= set(FAULT_KINDS) and len(set(ISSUE_8_KINDS)) == 26
    assert set(ORIGINAL_KINDS) < set(FAULT_KINDS)


@pytest.mark.parametrize("seed", FAILED_ONCE)
def test_seed_that_once_failed(seed: int) -> None:
    result = run_seed(build_scenario(seed, 4, ORIGINAL_KINDS, every_kind=False, wire=False))
    assert result.safety_violations == []
    assert result.liveness_failure is None


@pytest.mark.parametrize(("seed", "kinds"), FAILED_ONCE_WITH_KINDS)
def test_seed_that_once_failed_with_its_faults(seed: int, kinds: tuple[str, ...]) -> None:
    result = run_seed(build_scenario(seed, 4, kinds, every_kind=True, wire=False))
    assert result.safety_violations == []
    assert result.liveness_failure is None


REISSUE_KINDS_4 = (
    "delay,drop,duplicate,reorder,partition_symmetric,partition_asymmetric,split_2_2,"
    "isolate_primary,crash_restart,crash_lose_unsynced,lagging_replica,conflicting_votes,"
    "replay_old_view,huge_view,bad_signatures"
)
REISSUE_KINDS_7 = (
    "delay,drop,duplicate,reorder,partition_symmetric,partition_asymmetric,split_2_2,"
    "isolate_primary,crash_restart,crash_lose_unsynced,lagging_replica,equivocating_primary"
)
FAILED_ONCE_WITH_NODES = [(8803191, 4, REISSUE_KINDS_4), (8801032, 7, REISSUE_KINDS_7)]


@pytest.mark.parametrize(("seed", "nodes", "kinds"), FAILED_ONCE_WITH_NODES)
def test_seed_that_once_failed_with_its_size_and_faults(seed: int, nodes: int, kinds: str) -> None:
    scenario = build_scenario(seed, nodes, tuple(kinds.split(",")), every_kind=True, wire=False)
    result = run_seed(scenario)
    assert result.safety_violations == []
    assert result.liveness_failure is None
