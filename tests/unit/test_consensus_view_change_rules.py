"""Every reason `view_change_problem` and `new_view_problem` give, one case each."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus.actions import ReportFault
from consensus.events import MessageReceived
from consensus.messages import (
    Checkpoint,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
)
from consensus.sim.fixtures import (
    checkpoint,
    digest_of,
    make_config,
    make_replica,
    metadata_of,
    pre_prepare,
    prepare,
    request,
    signed,
)
from consensus.sim.keys import verify
from consensus.view_change import new_view_problem, plan_new_view, view_change_problem

BATCH = (request(1),)
ROOT = b"r" * 32
CONFIG = make_config(2)
BAD = b"\x00" * 16


def cert(seq: int = 1, view: int = 0) -> PreparedCertificate:
    return PreparedCertificate(
        pre_prepare(view, seq, BATCH),
        tuple(prepare(view, seq, BATCH, s) for s in (1, 2, 3) if s != view % 4)[:2],
    )


def vc(
    *,
    new_view: int = 1,
    sender: int = 3,
    stable_seq: int = 0,
    root: bytes = bytes(32),
    proof: tuple[Checkpoint, ...] = (),
    prepared: tuple[PreparedCertificate, ...] = (),
) -> ViewChange:
    return signed(ViewChange(new_view, stable_seq, root, proof, prepared, sender))


GOOD_PROOF = tuple(checkpoint(4, ROOT, s) for s in (0, 1, 2))
GOOD = cert()
PP = GOOD.pre_prepare


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (vc(new_view=0), "view-change to view 0"),
        (
            vc(stable_seq=4, root=ROOT, proof=GOOD_PROOF[:2]),
            "checkpoint proof lacks 2f+1 distinct signers",
        ),
        (
            vc(stable_seq=4, root=ROOT, proof=(*GOOD_PROOF[:2], GOOD_PROOF[0])),
            "checkpoint proof lacks 2f+1 distinct signers",
        ),
        (
            vc(stable_seq=4, root=ROOT, proof=(*GOOD_PROOF[:2], checkpoint(4, b"s" * 32, 3))),
            "checkpoint proof does not match",
        ),
        (
            vc(
                stable_seq=4,
                root=ROOT,
                proof=(*GOOD_PROOF[:2], replace(GOOD_PROOF[2], signature=BAD)),
            ),
            "checkpoint proof has a bad signature",
        ),
        (vc(prepared=(cert(view=1),)), "prepared in a view not below the new view"),
        (
            vc(prepared=(replace(GOOD, pre_prepare=signed(replace(PP, sender=1))),)),
            "prepared pre-prepare not from the primary of its view",
        ),
        (
            vc(prepared=(replace(GOOD, pre_prepare=replace(PP, batch=(request(2),))),)),
            "prepared batch does not match its digest",
        ),
        (
            vc(prepared=(replace(GOOD, pre_prepare=replace(PP, signature=BAD)),)),
            "prepared pre-prepare has a bad signature",
        ),
        (
            vc(prepared=(replace(GOOD, prepares=(GOOD.prepares[0], prepare(0, 2, BATCH, 2))),)),
            "prepare does not match its pre-prepare",
        ),
        (
            vc(
                prepared=(
                    replace(
                        GOOD, prepares=(GOOD.prepares[0], replace(GOOD.prepares[1], signature=BAD))
                    ),
                )
            ),
            "prepare has a bad signature",
        ),
    ],
)
def test_view_change_problems(message: ViewChange, reason: str) -> None:
    assert view_change_problem(message, CONFIG, verify) == reason
    if message.new_view == 0:
        return  # a replica drops it earlier, as stale
    backup = make_replica(2)
    assert backup.step(MessageReceived(3, message)) == [
        ReportFault("invalid_view_change", 3, reason)
    ]


def test_valid_view_change_with_a_checkpoint_and_a_certificate() -> None:
    message = vc(stable_seq=4, root=ROOT, proof=GOOD_PROOF, prepared=(cert(seq=5),))
    assert view_change_problem(message, CONFIG, verify) is None


def test_two_different_valid_view_changes_for_one_view_conflict() -> None:
    backup = make_replica(2)
    assert backup.step(MessageReceived(3, vc())) == []
    assert backup.step(MessageReceived(3, vc(prepared=(GOOD,)))) == [
        ReportFault("conflicting_view_change", 3, "two view-changes to 1")
    ]


def new_view(vcs: tuple[ViewChange, ...]) -> NewView:
    plan = plan_new_view(vcs, CONFIG)
    pps = tuple(signed(PrePrepare(1, s, d, b, m, 1)) for s, d, b, m in plan.batches)
    return signed(NewView(1, vcs, pps, 1))


QUORUM = (vc(sender=1), vc(sender=2, prepared=(GOOD,)), vc(sender=3))


def test_new_view_problems() -> None:
    honest = new_view(QUORUM)
    assert new_view_problem(honest, CONFIG, verify)[0] is None
    repeated = signed(replace(honest, view_changes=(QUORUM[0], QUORUM[0], QUORUM[1])))
    assert new_view_problem(repeated, CONFIG, verify)[0] == (
        "new-view lacks 2f+1 distinct view-changes"
    )
    bad_vc = vc(sender=3, new_view=0)
    invalid = signed(replace(honest, view_changes=(*QUORUM[:2], replace(bad_vc, new_view=1))))
    assert new_view_problem(invalid, CONFIG, verify)[0] == "new-view carries a forged view-change"
    inner = vc(sender=3, stable_seq=3)
    invalid = signed(replace(honest, view_changes=(*QUORUM[:2], inner)))
    assert new_view_problem(invalid, CONFIG, verify)[0] == (
        "new-view carries an invalid view-change: checkpoint 3 is not on a checkpoint boundary"
    )
    forged_pp = replace(honest.pre_prepares[0], signature=BAD)
    invalid = signed(replace(honest, pre_prepares=(forged_pp,)))
    assert (
        new_view_problem(invalid, CONFIG, verify)[0] == "new-view pre-prepare has a bad signature"
    )
    extra = signed(PrePrepare(1, 2, digest_of((), 1), (), metadata_of(1), 1))
    invalid = signed(replace(honest, pre_prepares=(*honest.pre_prepares, extra)))
    assert new_view_problem(invalid, CONFIG, verify)[0] == (
        "new-view pre-prepares differ from the recomputed ones"
    )


def test_plan_picks_the_highest_view_and_fills_gaps_with_null_batches() -> None:
    later = PreparedCertificate(
        pre_prepare(1, 3, (request(7),)),
        (prepare(1, 3, (request(7),), 2), prepare(1, 3, (request(7),), 3)),
    )
    vcs = (
        vc(new_view=2, sender=1, prepared=(cert(seq=3),)),
        vc(new_view=2, sender=2, prepared=(later,)),
        vc(new_view=2, sender=3),
    )
    plan = plan_new_view(vcs, CONFIG)
    assert [(s, b) for s, _, b, _ in plan.batches] == [(1, ()), (2, ()), (3, (request(7),))]
    assert plan.max_seq == 3


def test_plan_starts_at_the_highest_stable_checkpoint() -> None:
    vcs = (
        vc(sender=1, prepared=(cert(seq=2),)),
        vc(sender=2, stable_seq=4, root=ROOT, proof=GOOD_PROOF, prepared=(cert(seq=6),)),
        vc(sender=3),
    )
    plan = plan_new_view(vcs, CONFIG)
    assert (plan.stable_seq, plan.stable_root, plan.stable_proof) == (4, ROOT, GOOD_PROOF)
    assert [s for s, _, _, _ in plan.batches] == [5, 6]
    assert isinstance(plan.batches[0][2], tuple)
    assert isinstance(GOOD.prepares[0], Prepare)
