"""node.mempool.Mempool: admission outcomes, bounds, rate, conflicts, rebuild after a block."""

from __future__ import annotations

import pytest

from ledger import mempool as ledger_mempool
from ledger import signature_rule
from ledger.apply import apply_block, commit_applied
from ledger.build import BuiltTx, build_attest
from ledger.chain import commit_genesis
from ledger.execute import request_id_of
from ledger.proof_cache import ProofCache
from ledger.store import MemoryStore, TxLocation
from node import mempool as node_mempool
from node.mempool import MIN_RATE_RETRY_MS, Mempool, MempoolLimits, ProofWanted, peer_origin
from node.services import Accepted, Busy, Duplicate, Rejected
from tests.spec.ledger_world import USD, Party, World


def _attest(world: World, nonce: int) -> BuiltTx:
    digest = nonce.to_bytes(32, "big")
    return build_attest(world.bank_b.identity, world.chain_id, "doc", digest, nonce=nonce)


def _attest_by(world: World, bank: Party, nonce: int) -> BuiltTx:
    digest = nonce.to_bytes(32, "big")
    return build_attest(bank.identity, world.chain_id, "doc", digest, nonce=nonce)


def _mempool(world: World, store: MemoryStore, **limits: int) -> Mempool:
    return Mempool(store, world.genesis, ProofCache(), MempoolLimits(**limits))


def _held_by_a_proof(world: World, max_txs: int) -> tuple[Mempool, ProofWanted]:
    """A mempool of ``max_txs`` places, one held by an issue whose proof is pending."""
    mempool = _mempool(world, world.new_store(), max_txs=max_txs)
    issue = world.issue(world.bank_a, USD, [world.alice.plan(10)])
    wanted = mempool.admit(issue.encode(), 0)
    assert isinstance(wanted, ProofWanted)
    return mempool, wanted


def test_accept_then_duplicate_and_garbage_is_rejected_without_an_id() -> None:
    world = World()
    mempool = _mempool(world, world.new_store())
    attest = _attest(world, 1)
    assert mempool.admit(attest.encode(), 0) == Accepted(attest.tx_id)
    assert mempool.admit(attest.encode(), 0) == Duplicate(attest.tx_id)
    outcome = mempool.admit(b"\x93junk", 0)
    assert isinstance(outcome, Rejected) and outcome.reason_code == "MALFORMED"
    assert outcome.tx_id is None
    assert len(mempool) == 1 and mempool.size_bytes == len(attest.encode())


def test_a_tx_with_a_proof_waits_for_the_verifier_and_is_cached() -> None:
    world = World()
    cache = ProofCache()
    mempool = Mempool(world.new_store(), world.genesis, cache)
    issue = world.issue(world.bank_a, USD, [world.alice.plan(10)])
    wanted = mempool.admit(issue.encode(), 0)
    assert isinstance(wanted, ProofWanted)
    assert mempool.admit(issue.encode(), 0) == Duplicate(issue.tx_id)  # in admission
    assert mempool.in_admission() == 1 and len(mempool) == 0
    assert mempool.finish(wanted, proof_ok=True) == Accepted(issue.tx_id)
    statement = wanted.checked.statement
    assert statement is not None and statement in cache
    assert mempool.in_admission() == 0 and issue.tx_id in mempool


def test_a_bad_proof_is_rejected_and_frees_its_place() -> None:
    world = World()
    mempool, wanted = _held_by_a_proof(world, max_txs=1)
    assert mempool.admit(_attest(world, 1).encode(), 0) == Busy("MEMPOOL_FULL", 1_000)
    outcome = mempool.finish(wanted, proof_ok=False)
    assert isinstance(outcome, Rejected) and outcome.reason_code == "BAD_RANGE_PROOF"
    assert isinstance(mempool.admit(_attest_by(world, world.bank_a, 1).encode(), 0), Accepted)


def test_full_by_count_or_bytes_answers_busy_with_retry_after() -> None:
    world = World()
    first, second = _attest(world, 1), _attest(world, 2)
    by_count = _mempool(world, world.new_store(), max_txs=1)
    assert isinstance(by_count.admit(first.encode(), 0), Accepted)
    assert by_count.admit(second.encode(), 0) == Busy("MEMPOOL_FULL", 1_000)
    by_bytes = _mempool(world, world.new_store(), max_bytes=len(first.encode()) + 10)
    assert isinstance(by_bytes.admit(first.encode(), 0), Accepted)
    assert by_bytes.admit(second.encode(), 0) == Busy("MEMPOOL_FULL", 1_000)


def test_an_account_over_its_rate_waits_for_a_token() -> None:
    """A bucket of two, one token back every 5 s: a burst of two passes, the third
    waits until the first token is back, and other accounts are not held back."""
    world = World()
    mempool = _mempool(world, world.new_store(), account_txs_per_window=2, account_window_ms=10_000)
    txs = [_attest(world, n) for n in (1, 2, 3)]
    assert isinstance(mempool.admit(txs[0].encode(), 1_000), Accepted)
    assert isinstance(mempool.admit(txs[1].encode(), 1_500), Accepted)
    # Told the exact wait (over the floor): the first token is back at 6,000.
    assert mempool.admit(txs[2].encode(), 2_000) == Busy("RATE_LIMITED", 4_000)
    other = world.issue(world.bank_a, USD, [world.alice.plan(1)])
    assert isinstance(mempool.admit(other.encode(), 2_000), ProofWanted)  # another account
    assert isinstance(mempool.admit(txs[2].encode(), 6_000), Accepted)


def test_an_account_under_its_rate_on_average_may_send_in_bunches() -> None:
    """Half the rate on average, in bunches as big as the bucket: never refused. A
    sliding window (at most N in any window) refused the bunch after a pause short
    of a window, and the client waited a second."""
    world = World()
    mempool = _mempool(world, world.new_store(), account_txs_per_window=4, account_window_ms=1_000)
    txs = iter(_attest(world, n) for n in range(1, 17))
    for bunch_at_ms in (0, 1_000, 2_000, 3_000):  # four at once each second: the rate
        for tx in (next(txs) for _ in range(4)):
            assert isinstance(mempool.admit(tx.encode(), bunch_at_ms), Accepted)
    late = _attest(world, 17)
    assert mempool.admit(late.encode(), 3_000) == Busy("RATE_LIMITED", MIN_RATE_RETRY_MS)


def test_a_refused_account_stays_refused_until_its_retry_after() -> None:
    """Room that opens before the Retry-After the client was told does not let the
    account's next nonce in ahead of the refused one (it would commit first and turn
    the refused one REPLAYED); other accounts are not held back."""
    world = World()
    mempool = _mempool(world, world.new_store(), account_txs_per_window=2, account_window_ms=3000)
    txs = [_attest(world, n) for n in (1, 2, 3, 4)]
    assert isinstance(mempool.admit(txs[0].encode(), 1_000), Accepted)
    assert isinstance(mempool.admit(txs[1].encode(), 1_500), Accepted)
    # A token is back at 2,500, but a client is never told less than the floor.
    assert mempool.admit(txs[2].encode(), 2_000) == Busy("RATE_LIMITED", MIN_RATE_RETRY_MS)
    # The bucket has a token from 2,500, but the account was told to wait until 3,000.
    assert mempool.admit(txs[3].encode(), 2_600) == Busy("RATE_LIMITED", 400)
    assert isinstance(mempool.admit(_attest_by(world, world.bank_a, 1).encode(), 2_600), Accepted)
    assert isinstance(mempool.admit(txs[2].encode(), 3_000), Accepted)
    assert isinstance(mempool.admit(txs[3].encode(), 4_000), Accepted)


def test_an_account_refused_as_full_waits_its_retry_after_though_room_opens() -> None:
    world = World()
    mempool, wanted = _held_by_a_proof(world, max_txs=1)
    assert mempool.admit(_attest(world, 1).encode(), 100) == Busy("MEMPOOL_FULL", 1_000)
    mempool.finish(wanted, proof_ok=False)  # room again
    assert mempool.admit(_attest(world, 2).encode(), 600) == Busy("MEMPOOL_FULL", 500)
    # A peer's gossip of the account is held to the hard bounds only: the client
    # that was told to wait is not the peer's.
    gossiped = _attest(world, 2)
    assert mempool.admit(gossiped.encode(), 600, from_client=False) == Accepted(gossiped.tx_id)
    # And a peer's gossip refused at the hard bound holds the account's clients back
    # from nothing: no client was told to wait.
    bound, bound_wanted = _held_by_a_proof(world, max_txs=1)
    refused = bound.admit(_attest(world, 1).encode(), 0, from_client=False)
    assert refused == Busy("MEMPOOL_FULL", 1_000)
    bound.finish(bound_wanted, proof_ok=False)
    assert isinstance(bound.admit(_attest(world, 1).encode(), 1), Accepted)
    later, later_wanted = _held_by_a_proof(world, max_txs=2)
    assert isinstance(later.admit(_attest_by(world, world.bank_a, 1).encode(), 0), Accepted)
    assert later.admit(_attest(world, 1).encode(), 100) == Busy("MEMPOOL_FULL", 1_000)
    later.finish(later_wanted, proof_ok=False)
    assert later.admit(_attest(world, 1).encode(), 1_099) == Busy("MEMPOOL_FULL", 1)  # 1 ms
    assert isinstance(later.admit(_attest(world, 1).encode(), 1_100), Accepted)


def test_holds_stay_bounded_and_a_flood_prunes_a_tenth_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(node_mempool, "MAX_TRACKED_ACCOUNTS", 10)
    world = World()
    mempool = _mempool(world, world.new_store())
    busy = Busy("RATE_LIMITED", 1_000)
    for n in range(25):
        assert mempool._hold(n.to_bytes(32, "big"), busy, 0) == busy
        assert len(mempool._refused_until) <= 10
    # A prune keeps the newest holds and drops the oldest.
    assert mempool._still_refused((24).to_bytes(32, "big"), 500) == Busy("RATE_LIMITED", 500)
    assert mempool._still_refused((0).to_bytes(32, "big"), 500) is None


def test_rates_stay_bounded_and_full_buckets_go_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_mempool, "MAX_TRACKED_ACCOUNTS", 10)
    world = World()
    mempool = _mempool(world, world.new_store(), account_txs_per_window=1, account_window_ms=1_000)
    accounts = [n.to_bytes(32, "big") for n in range(40)]
    for account in accounts[:9]:
        mempool._count_admission(account, 0)
    limited, newcomer = accounts[9], accounts[10]
    mempool._count_admission(limited, 4_500)
    # At 5,000 the first nine buckets are full again: they go, not the one still limited.
    mempool._count_admission(newcomer, 5_000)
    assert set(mempool._account_tat) == {limited, newcomer}
    assert mempool._rate_limited(limited, 5_000) == MIN_RATE_RETRY_MS
    for account in accounts[11:]:  # a flood of limited accounts: the oldest go
        mempool._count_admission(account, 5_000)
        assert len(mempool._account_tat) <= 10
    assert mempool._rate_limited(accounts[-1], 5_000) == MIN_RATE_RETRY_MS
    assert mempool._rate_limited(limited, 5_000) is None  # forgotten: a full bucket


def test_forged_txs_naming_an_account_do_not_use_up_its_window() -> None:
    """Only txs that passed their checks count: anyone could otherwise send txs with
    a bad signature in a bank's name and have the node refuse the bank's own."""
    world = World()
    mempool = _mempool(world, world.new_store(), account_txs_per_window=2, account_window_ms=3000)
    for n in range(1, 6):
        tx = _attest(world, n).tx
        forged = tx.__class__(
            tx.kind, tx.body, bytes([tx.signature[0] ^ 1]) + tx.signature[1:], tx.witness
        )
        outcome = mempool.admit(forged.encode(), 1_000)
        assert isinstance(outcome, Rejected) and outcome.reason_code == "BAD_SIGNATURE"
    txs = [_attest(world, n) for n in (1, 2, 3)]
    assert isinstance(mempool.admit(txs[0].encode(), 1_000), Accepted)
    assert isinstance(mempool.admit(txs[1].encode(), 1_000), Accepted)
    assert mempool.admit(txs[2].encode(), 1_000) == Busy("RATE_LIMITED", 1_500)


def test_a_peers_gossip_is_neither_rate_limited_nor_counted() -> None:
    """The validator that took the txs from the client counted them. A peer that
    refused part of a gossiped run let the account's later nonces into the
    primary's batches before the earlier ones, which then failed as REPLAYED."""
    world = World()
    mempool = _mempool(world, world.new_store(), account_txs_per_window=2, account_window_ms=3000)
    txs = [_attest(world, n) for n in range(1, 6)]
    for tx in txs[:3]:
        assert mempool.admit(tx.encode(), 1_000, from_client=False) == Accepted(tx.tx_id)
    assert isinstance(mempool.admit(txs[3].encode(), 1_000), Accepted)
    assert isinstance(mempool.admit(txs[4].encode(), 1_000), Accepted)
    client_over = _attest(world, 6)
    assert mempool.admit(client_over.encode(), 1_000) == Busy("RATE_LIMITED", 1_500)
    assert mempool.admit(client_over.encode(), 1_000, from_client=False) == Accepted(
        client_over.tx_id
    )


def test_a_conflicting_spend_is_refused_while_the_first_is_pending() -> None:
    world = World()
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(10)])
    world.commit(store, [issue])
    mempool = _mempool(world, store)
    spend = World.spend(issue, 0)
    to_bob = world.transfer(world.alice, USD, [spend], [world.bob.plan(10)])
    to_carol = world.transfer(world.alice, USD, [spend], [world.carol.plan(10)])
    wanted = mempool.admit(to_bob.encode(), 0)
    assert isinstance(wanted, ProofWanted)
    assert mempool.finish(wanted, proof_ok=True) == Accepted(to_bob.tx_id)
    outcome = mempool.admit(to_carol.encode(), 0)
    assert isinstance(outcome, Rejected) and outcome.reason_code == "DOUBLE_SPEND"


def test_after_a_block_committed_txs_leave_and_conflicting_survivors_are_dropped() -> None:
    world = World()
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(10)])
    world.commit(store, [issue])
    spend = World.spend(issue, 0)
    to_bob = world.transfer(world.alice, USD, [spend], [world.bob.plan(10)])
    to_carol = world.transfer(world.alice, USD, [spend], [world.carol.plan(10)])
    attest = _attest(world, 1)
    mempool = _mempool(world, store)
    for tx in (to_carol, attest):
        admission = mempool.admit(tx.encode(), 0)
        if isinstance(admission, ProofWanted):
            admission = mempool.finish(admission, proof_ok=True)
        assert isinstance(admission, Accepted)
    fed = mempool.take_unfed(10)
    assert [r.payload for r in fed] == [to_carol.encode(), attest.encode()]
    assert [r.request_id for r in fed] == [request_id_of(r.payload, world.chain_id) for r in fed]
    assert mempool.take_unfed(10) == ()
    # Another node's block spent the same input to Bob.
    world.commit(store, [to_bob])
    dropped = mempool.on_block(store)
    assert [(tx_id, exc.reason.value) for tx_id, exc in dropped] == [
        (to_carol.tx_id, "DOUBLE_SPEND")
    ]
    assert attest.tx_id in mempool and to_carol.tx_id not in mempool
    assert mempool.size_bytes == len(attest.encode())
    world.commit(store, [attest])
    assert mempool.on_block(store) == [] and len(mempool) == 0 and mempool.size_bytes == 0


def test_a_proof_check_that_spans_a_block_is_checked_again_against_the_new_pending() -> None:
    world = World()
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(10)])
    world.commit(store, [issue])
    spend = World.spend(issue, 0)
    to_bob = world.transfer(world.alice, USD, [spend], [world.bob.plan(10)])
    to_carol = world.transfer(world.alice, USD, [spend], [world.carol.plan(10)])
    mempool = _mempool(world, store)
    wanted = mempool.admit(to_carol.encode(), 0)
    assert isinstance(wanted, ProofWanted)
    world.commit(store, [to_bob])  # committed while the proof was being verified
    mempool.on_block(store)
    outcome = mempool.finish(wanted, proof_ok=True)
    assert isinstance(outcome, Rejected) and outcome.reason_code == "DOUBLE_SPEND"
    assert len(mempool) == 0


def _count_calls(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    calls = [0]
    original = getattr(module, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_survivors_of_a_block_are_not_checked_again_when_their_reads_are_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With thousands pending, re-running phase 1 (signatures, decoding, apply_tx) for
    every survivor after every block stalled the event loop for seconds (docs/performance.md);
    a survivor whose reads the block left as they were is merged with its recorded writes."""
    world = World()
    store = world.new_store()
    mempool = _mempool(world, store)
    attests = [_attest(world, nonce) for nonce in range(1, 41)]
    for attest in attests:
        assert isinstance(mempool.admit(attest.encode(), 0), Accepted)
    stateless = _count_calls(monkeypatch, ledger_mempool, "check_stateless")
    stateful = _count_calls(monkeypatch, ledger_mempool, "apply_tx")
    world.commit(store, attests[:10])
    assert mempool.on_block(store) == []
    assert len(mempool) == 30
    assert stateless[0] == 0 and stateful[0] == 0
    # The merged writes are the right ones: the next nonce fits, a replayed one does not.
    assert isinstance(mempool.admit(_attest(world, 41).encode(), 0), Accepted)
    replayed = build_attest(world.bank_b.identity, world.chain_id, "doc", b"\1" * 32, nonce=40)
    outcome = mempool.admit(replayed.encode(), 0)
    assert isinstance(outcome, Rejected) and outcome.reason_code == "REPLAYED"


def test_a_survivor_whose_reads_changed_is_checked_again() -> None:
    """The other side of the shortcut: the block wrote a key a survivor read (here the
    signer's nonce, moved past it by a tx this node never saw): it is dropped."""
    world = World()
    store = world.new_store()
    mempool = _mempool(world, store)
    mine = _attest(world, 5)
    assert isinstance(mempool.admit(mine.encode(), 0), Accepted)
    elsewhere = build_attest(world.bank_b.identity, world.chain_id, "x", b"\2" * 32, nonce=7)
    world.commit(store, [elsewhere])
    dropped = mempool.on_block(store)
    assert [(tx_id, exc.reason.value) for tx_id, exc in dropped] == [(mine.tx_id, "REPLAYED")]
    assert len(mempool) == 0


def test_a_clients_tx_is_refused_past_the_backlog_the_network_commits_in_max_backlog_ms() -> None:
    """Issue 9 overload: at 1,600 attests/s offered against ~300/s of capacity the
    mempool took 20,000 txs (its hard bound), a minute of commits, so every
    admitted tx waited ~45 s. A client's tx is now refused with Retry-After once
    the pending txs reach what the network committed in ``max_backlog_ms`` at its
    recent rate (``min_backlog_txs`` at least); a peer's gossip is not."""
    world = World()
    limits = {"min_backlog_txs": 2, "max_backlog_ms": 1_000, "commit_rate_window_ms": 2_000}
    mempool = _mempool(world, world.new_store(), **limits)
    txs = [_attest(world, n) for n in range(1, 8)]
    assert mempool.backlog_bound_txs(0) == 2
    assert isinstance(mempool.admit(txs[0].encode(), 0), Accepted)
    assert isinstance(mempool.admit(txs[1].encode(), 0), Accepted)
    assert mempool.admit(txs[2].encode(), 0) == Busy("MEMPOOL_FULL", 1_000)
    gossip = mempool.admit(txs[2].encode(), 0, from_client=False)
    assert gossip == Accepted(txs[2].tx_id)  # a peer admitted it: this node must hold it too
    # The network committed 8 txs in the last 2 s: 4/s, so 1 s of backlog is 4 txs.
    mempool.record_commits(5, 2_500)
    mempool.record_commits(3, 3_500)
    assert mempool.backlog_bound_txs(3_500) == 4
    assert isinstance(mempool.admit(txs[3].encode(), 3_500), Accepted)
    assert mempool.admit(txs[4].encode(), 3_500) == Busy("MEMPOOL_FULL", 1_000)
    # The first block left the window: 3 txs in 2 s, 1.5/s, under the floor of 2.
    assert mempool.backlog_bound_txs(4_500) == 2


def test_a_fresh_node_holds_a_bank_s_burst_while_the_first_block_is_cut() -> None:
    """Before any commit the bound is the floor; past it a bank's client tx is refused
    once the bank holds its share (a quarter on four validators). With the old floor
    of 256 that share was 64, fewer than a bank sends at 400/s in the tick its
    primary waits to cut the first block (``batch_cut_ms``), so a fresh devnet
    answered ``MEMPOOL_FULL`` in its first second. The default floor is four
    blocks of 256, what a primary may have in flight."""
    world = World()
    mempool = _mempool(world, world.new_store())
    assert mempool.backlog_bound_txs(0) == 1_024
    txs = [_attest(world, n) for n in range(1, 301)]
    outcomes = [mempool.admit(tx.encode(), 0) for tx in txs]
    assert all(isinstance(o, Accepted) for o in outcomes)
    limits = {"min_backlog_txs": 256}
    old_floor = _mempool(world, world.new_store(), **limits)
    refused = [old_floor.admit(tx.encode(), 0) for tx in txs]
    assert Busy("MEMPOOL_FULL", 1_000) in refused


def test_a_quiet_spell_keeps_the_backlog_the_network_last_committed() -> None:
    """The mempool empty, time does not age the commit rate: a burst after a pause is
    sized by the rate the network last showed, not held to the floor (node.commit_rate)."""
    world = World()
    limits = {"min_backlog_txs": 2, "max_backlog_ms": 1_000, "commit_rate_window_ms": 2_000}
    store = world.new_store()
    mempool = _mempool(world, store, **limits)
    tx = _attest(world, 1)
    assert isinstance(mempool.admit(tx.encode(), 0), Accepted)
    world.commit(store, [tx])
    mempool.record_commits(8, 2_000)  # 8 txs in the last 2 s: 4/s
    mempool.note_committed(store.height(), [tx.tx_id])
    assert mempool.on_block(store) == [] and len(mempool) == 0
    assert mempool.backlog_bound_txs(2_000) == 4
    assert mempool.backlog_bound_txs(30_000) == 4  # after half a minute with nothing held
    busy = _attest(world, 2)
    assert isinstance(mempool.admit(busy.encode(), 30_000), Accepted)
    assert mempool.backlog_bound_txs(31_000) == 4  # a second busy: the block is in the window
    assert mempool.backlog_bound_txs(32_500) == 2  # it left: the floor


def test_the_backlog_bound_never_exceeds_max_txs() -> None:
    world = World()
    mempool = _mempool(world, world.new_store(), max_txs=3, min_backlog_txs=2)
    mempool.record_commits(10_000, 0)
    assert mempool.backlog_bound_txs(0) == 3


@pytest.mark.parametrize("name", ["max_backlog_ms", "min_backlog_txs", "commit_rate_window_ms"])
def test_backlog_limits_must_be_positive(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        MempoolLimits(**{name: 0})


def test_the_feeder_takes_only_unfed_txs_in_order_and_skips_those_a_block_took() -> None:
    world = World()
    store = world.new_store()
    mempool = _mempool(world, store)
    b1, b2, b3 = (_attest(world, n) for n in range(1, 4))
    other = build_attest(world.bank_a.identity, world.chain_id, "doc", bytes(32), nonce=1)
    for tx in (b1, other, b2, b3):
        assert isinstance(mempool.admit(tx.encode(), 0), Accepted)
    assert [r.payload for r in mempool.take_unfed(1)] == [b1.encode()]
    world.commit(store, [other])  # another node's block committed it before we fed it
    assert mempool.on_block(store) == []
    assert [r.payload for r in mempool.take_unfed(10)] == [b2.encode(), b3.encode()]
    assert mempool.take_unfed(10) == () and mempool.unfed_count() == 0
    mempool.refeed_all()
    assert [r.payload for r in mempool.take_unfed(10)] == [t.encode() for t in (b1, b2, b3)]


class _CountedTxIndex(MemoryStore):
    """A store that counts its tx-index reads (``tx_location``)."""

    def __init__(self) -> None:
        super().__init__()
        self.tx_lookups = 0

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        self.tx_lookups += 1
        return super().tx_location(tx_id)


def test_one_tx_index_read_per_admission_and_per_survivor_of_a_block() -> None:
    """The node's mempool looks a tx id up before its capacity checks; phase 1 and the
    rebuild after a block read the same index entry again (a LevelDB read each), once
    more per admission and per pending tx per block: now the caller's answer is used."""
    world = World()
    store = _CountedTxIndex()
    commit_genesis(store, world.genesis)
    mempool = _mempool(world, store)
    attests = [_attest(world, nonce) for nonce in range(1, 21)]
    store.tx_lookups = 0
    for attest in attests:
        assert isinstance(mempool.admit(attest.encode(), 0), Accepted)
    assert store.tx_lookups == 20
    world.commit(store, attests[:5])
    store.tx_lookups = 0
    assert mempool.on_block(store) == []
    assert len(mempool) == 15 and store.tx_lookups == 20  # 5 committed + 15 survivors
    # The checks the second read made still hold: a committed or pending tx is a duplicate.
    assert mempool.admit(attests[0].encode(), 0) == Duplicate(attests[0].tx_id)
    assert mempool.admit(attests[9].encode(), 0) == Duplicate(attests[9].tx_id)


def test_on_unfed_is_called_for_each_accepted_tx_and_for_a_refeed() -> None:
    """The runtime's feeder sleeps until this callback: a missed call would leave a
    tx unfed, so each path into the unfed queue must make it."""
    world = World()
    calls: list[str] = []
    mempool = Mempool(
        world.new_store(), world.genesis, ProofCache(), on_unfed=lambda: calls.append("unfed")
    )
    mempool.refeed_all()
    assert calls == []  # nothing pending: nothing to wake for
    first, second = _attest(world, 1), _attest(world, 2)
    assert mempool.admit(first.encode(), 0) == Accepted(first.tx_id)
    assert mempool.admit(first.encode(), 0) == Duplicate(first.tx_id)
    assert mempool.admit(b"\x93junk", 0).__class__ is Rejected
    assert calls == ["unfed"]
    assert mempool.admit(second.encode(), 0) == Accepted(second.tx_id)
    assert len(mempool.take_unfed(10)) == 2 and calls == ["unfed"] * 2
    mempool.refeed_all()
    assert calls == ["unfed"] * 3 and len(mempool.take_unfed(10)) == 2


def _twenty_pending_attests() -> tuple[World, _CountedTxIndex, Mempool, list[BuiltTx]]:
    """A mempool over a tx-index-counting store, holding attests with nonces 1-20."""
    world = World()
    store = _CountedTxIndex()
    commit_genesis(store, world.genesis)
    mempool = _mempool(world, store)
    attests = [_attest(world, nonce) for nonce in range(1, 21)]
    for attest in attests:
        assert isinstance(mempool.admit(attest.encode(), 0), Accepted)
    return world, store, mempool, attests


def test_a_block_noted_as_the_only_one_since_the_last_rebuild_drops_by_its_ids() -> None:
    """The rebuild read the tx index for every pending tx after every block (a LevelDB
    read each, 40 % of a rebuild with six blocks pending in benchmarks.pipeline_cpu);
    the runtime now tells the mempool which txs the block committed."""
    world, store, mempool, attests = _twenty_pending_attests()
    world.commit(store, attests[:5])
    mempool.note_committed(1, [a.tx_id for a in attests[:5]])
    store.tx_lookups = 0
    assert mempool.on_block(store) == []
    assert store.tx_lookups == 0
    assert [r.payload for r in mempool.take_unfed(20)] == [a.encode() for a in attests[5:]]
    assert mempool.admit(attests[0].encode(), 0) == Duplicate(attests[0].tx_id)


def test_a_block_that_took_the_first_nonces_leaves_the_rest_in_place() -> None:
    """With the block's state writes, the rebuild compares the next nonce's read with
    the block's nonce and walks no survivor: the pending view stays, the block's txs
    leave it, and the chain of nonces goes on. A block that moved the nonce some
    other way (a tx this node never held) rebuilds in full."""
    world, store, mempool, attests = _twenty_pending_attests()
    result = world.commit(store, attests[:5])
    mempool.note_committed(1, result.tx_ids, result.delta)
    store.tx_lookups = 0
    view_before = dict(mempool._pending.view.delta().items())
    assert mempool.on_block(store) == []
    assert mempool.rebuilds == {"in_place": 1} and store.tx_lookups == 0
    assert list(mempool._entries) == [a.tx_id for a in attests[5:]]
    assert len(mempool._pending) == 15 and len(mempool._index) == 15
    left = dict(mempool._pending.view.delta().items())
    # The survivors' writes as they were; the committed attests' own records gone.
    assert left.items() <= view_before.items() and len(left) == len(view_before) - 5
    assert all(attest.tx_id in mempool for attest in attests[5:])
    assert mempool.admit(_attest(world, 21).encode(), 0) == Accepted(_attest(world, 21).tx_id)
    # Nonce 6 with another digest: not the pending one.
    elsewhere = build_attest(world.bank_b.identity, world.chain_id, "doc", b"\x07" * 32, nonce=6)
    result = world.commit(store, [elsewhere])
    mempool.note_committed(2, result.tx_ids, result.delta)
    dropped = mempool.on_block(store)
    assert mempool.rebuilds == {"in_place": 1, "in_full": 1}
    assert [exc.reason.value for _, exc in dropped][:1] == ["REPLAYED"]


def test_a_note_that_misses_a_block_since_the_last_rebuild_is_not_used() -> None:
    """Two blocks committed between rebuilds (catch-up rebuilds once per chunk): the
    second block's ids alone would keep the first block's txs pending, so the tx index
    decides; a note for another height is ignored the same way."""
    world, store, mempool, attests = _twenty_pending_attests()
    world.commit(store, attests[:5])
    world.commit(store, attests[5:10])
    mempool.note_committed(2, [a.tx_id for a in attests[5:10]])
    store.tx_lookups = 0
    assert mempool.on_block(store) == []
    assert store.tx_lookups == 20 and len(mempool) == 10
    world.commit(store, attests[10:15])
    mempool.note_committed(4, [a.tx_id for a in attests[10:15]])
    assert mempool.on_block(store) == [] and len(mempool) == 5


def test_a_pending_copy_with_the_bytes_a_block_rejected_is_dropped_though_it_now_fits() -> None:
    """A byzantine primary orders a pending tx x before the pending tx z it spends
    from: the block rejects x and commits z. Over the new state x fits, but
    consensus executed its request and drops it as a duplicate if fed again: kept,
    it stayed pending on every node forever, z's output held by it."""
    world = World()
    store = world.new_store()
    mempool = Mempool(store, world.genesis, ProofCache())
    z = world.issue(world.bank_a, USD, [world.alice.plan(10)])
    x = world.transfer(world.alice, USD, [World.spend(z, 0)], [world.bob.plan(10)])
    for tx in (z, x):
        admitted = mempool.admit(tx.encode(), 0, from_client=False)
        if isinstance(admitted, ProofWanted):
            admitted = mempool.finish(admitted, proof_ok=True)
        assert admitted == Accepted(tx.tx_id)
    assert [r.payload for r in mempool.take_unfed(10)] == [z.encode(), x.encode()]
    executed = world.execute(store, [x, z])
    assert [r.payload for r in executed.rejected] == [x.encode()]
    result = apply_block(store, executed.block, world.genesis)
    commit_applied(store, executed.block, result, certificate=b"c", metadata=executed.metadata)
    mempool.note_committed(1, [z.tx_id])

    assert mempool.on_block(store, executed=frozenset({x.encode()})) == []
    assert x.tx_id not in mempool and len(mempool) == 0
    again = world.transfer(world.alice, USD, [World.spend(z, 0)], [world.carol.plan(10)])
    respent = mempool.admit(again.encode(), 0, from_client=False)
    if isinstance(respent, ProofWanted):
        respent = mempool.finish(respent, proof_ok=True)
    assert respent == Accepted(again.tx_id)  # z's output is no longer held


def test_a_block_rejecting_other_bytes_of_a_pending_tx_leaves_the_pending_copy() -> None:
    """A forged-signature copy rejected in a block names the honest copy's tx id; the
    honest copy, other bytes, is a request of its own and stays."""
    world = World()
    mempool = _mempool(world, world.new_store())
    honest = _attest(world, 1)
    assert isinstance(mempool.admit(honest.encode(), 0), Accepted)
    tx = honest.tx
    forged = tx.__class__(tx.kind, tx.body, bytes(64), tx.witness)
    assert mempool.on_block(world.new_store(), executed=frozenset({forged.encode()})) == []
    assert honest.tx_id in mempool


def test_a_tx_at_its_proof_check_when_a_block_rejects_its_bytes_is_not_accepted_after() -> None:
    """Accepted after the block, it would be fed again and dropped by consensus as a
    request executed already: pending forever, as a pending copy was."""
    world = World()
    mempool, wanted = _held_by_a_proof(world, max_txs=4)
    assert mempool.on_block(world.new_store(), executed=frozenset({wanted.tx_bytes})) == []
    assert mempool.in_admission() == 0
    assert mempool.finish(wanted, proof_ok=True) == Duplicate(wanted.checked.dtx.tx_id)
    assert len(mempool) == 0 and mempool.size_bytes == 0
    # Other bytes rejected in a block leave an admission alone.
    other, other_wanted = _held_by_a_proof(world, max_txs=4)
    assert other.on_block(world.new_store(), executed=frozenset({b"other bytes"})) == []
    assert other.in_admission() == 1
    assert isinstance(other.finish(other_wanted, proof_ok=True), Accepted)


def test_one_validators_gossip_flood_leaves_every_bank_its_share() -> None:
    """A byzantine validator gossiping valid txs filled the backlog, and every bank's
    clients got MEMPOOL_FULL while the flood lasted. Now a peer's gossip stops at its
    share of the hard bounds (one per validator), whoever signed it, and a client is
    refused past the backlog bound only when its bank holds its share of it."""
    world = World()
    store = world.new_store()
    # 4 validators: gossip shares of 40 // 4 = 10 txs; a backlog bound of 8, shares of 2.
    mempool = _mempool(world, store, max_txs=40, min_backlog_txs=8)
    # The flood is signed by bank A's own key: charging it to the signer's bank
    # would let it use up bank A's clients' share (a review's find).
    flood = [_attest_by(world, world.bank_a, n) for n in range(1, 21)]
    outcomes = [mempool.admit(tx.encode(), 0, from_client=False, peer=3) for tx in flood]
    assert outcomes[:10] == [Accepted(tx.tx_id) for tx in flood[:10]]
    assert outcomes[10:] == [Busy("MEMPOOL_FULL", 1_000)] * 10
    assert len(mempool) == 10 >= mempool.backlog_bound_txs(0) == 8
    # Another peer's gossip has its own share.
    other = _attest_by(world, world.bank_b, 1)
    assert mempool.admit(other.encode(), 0, from_client=False, peer=1) == Accepted(other.tx_id)
    # Past the backlog bound, each bank's clients still get their bank's share of it.
    bank_b = [_attest(world, n) for n in range(2, 5)]  # bank B's key, after its gossiped 1
    assert mempool.admit(bank_b[0].encode(), 0) == Accepted(bank_b[0].tx_id)
    assert mempool.admit(bank_b[1].encode(), 0) == Accepted(bank_b[1].tx_id)
    assert mempool.admit(bank_b[2].encode(), 0) == Busy("MEMPOOL_FULL", 1_000)
    # Carol's account is registered by bank B: her bank's share is used up.
    carol = build_attest(world.carol.identity, world.chain_id, "doc", bytes(32), nonce=1)
    assert mempool.admit(carol.encode(), 0) == Busy("MEMPOOL_FULL", 1_000)
    # Bank A's own clients hold nothing here yet: the flood signed with its key
    # counts for the peer that gossiped it.
    bank_a_client = _attest_by(world, world.bank_a, 11)
    assert mempool.admit(bank_a_client.encode(), 0) == Accepted(bank_a_client.tx_id)
    assert mempool.held_by_origin() == {
        peer_origin(3): 10,
        peer_origin(1): 1,
        world.bank_b.key: 2,
        world.bank_a.key: 1,
    }
    # Committed txs leave their origin's share.
    world.commit(store, flood[:10])
    assert mempool.on_block(store) == []
    assert peer_origin(3) not in mempool.held_by_origin()
    # (nonce 11 is the client's tx above, the same bytes as flood[10])
    gossip = mempool.admit(flood[11].encode(), 0, from_client=False, peer=3)
    assert gossip == Accepted(flood[11].tx_id)


def test_a_proof_wanted_holds_its_share_until_it_ends() -> None:
    world = World()
    mempool = _mempool(world, world.new_store())
    issue = world.issue(world.bank_a, USD, [world.alice.plan(10)])
    wanted = mempool.admit(issue.encode(), 0)
    assert isinstance(wanted, ProofWanted)
    assert mempool.held_by_origin() == {world.bank_a.key: 1}
    assert isinstance(mempool.finish(wanted, proof_ok=False), Rejected)
    assert mempool.held_by_origin() == {}
    again = mempool.admit(issue.encode(), 0)
    assert isinstance(again, ProofWanted)
    mempool.abandon(again)
    assert mempool.held_by_origin() == {}
    third = mempool.admit(issue.encode(), 0)
    assert isinstance(third, ProofWanted)
    assert isinstance(mempool.finish(third, proof_ok=True), Accepted)
    assert mempool.held_by_origin() == {world.bank_a.key: 1}


def _forged(built: BuiltTx) -> bytes:
    tx = built.tx
    signature = bytes([tx.signature[0] ^ 1]) + tx.signature[1:]
    return tx.__class__(tx.kind, tx.body, signature, tx.witness).encode()


@pytest.mark.skipif(not signature_rule.NATIVE_BATCH, reason="the native batch is not built")
def test_a_chunk_checked_ahead_admits_as_one_by_one_and_a_forgery_is_checked_once_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``check_ahead`` only saves work: the same outcomes, in order, as admitting
    each tx alone, and nothing left behind. A forgery fails the batch, so each
    signature is checked alone once; ``admit`` takes every verdict as found."""
    world = World()
    goods = signature_rule.MIN_BATCH
    chunk = [_attest(world, n).encode() for n in range(1, goods + 1)]
    chunk.insert(3, _forged(_attest(world, goods + 1)))
    chunk.append(b"\x93junk")
    alone = _mempool(world, world.new_store())
    expected = [alone.admit(tx_bytes, 0, from_client=False, peer=1) for tx_bytes in chunk]

    batches = _count_calls(monkeypatch, signature_rule, "_native_batch")
    singles = _count_calls(monkeypatch, signature_rule, "_native_one")
    ahead = _mempool(world, world.new_store())
    assert ahead.check_ahead(chunk, 0, from_client=False, peer=1) == goods + 1
    outcomes = [ahead.admit(tx_bytes, 0, from_client=False, peer=1) for tx_bytes in chunk]
    assert outcomes == expected
    assert [type(o) for o in outcomes].count(Accepted) == goods
    rejected = outcomes[3]
    assert isinstance(rejected, Rejected) and rejected.reason_code == "BAD_SIGNATURE"
    assert batches[0] == 1 and singles[0] == goods + 1
    assert not ahead._decoded_ahead and ahead._decoded_ahead_bytes == 0


@pytest.mark.skipif(not signature_rule.NATIVE_BATCH, reason="the native batch is not built")
def test_a_good_chunk_costs_one_batch_and_no_single_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    chunk = [_attest(world, n).encode() for n in range(1, signature_rule.MIN_BATCH + 1)]
    batches = _count_calls(monkeypatch, signature_rule, "_native_batch")
    singles = _count_calls(monkeypatch, signature_rule, "_native_one")
    mempool = _mempool(world, world.new_store())
    assert mempool.check_ahead(chunk, 0, from_client=False, peer=1) == len(chunk)
    outcomes = [mempool.admit(tx, 0, from_client=False, peer=1) for tx in chunk]
    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    assert batches[0] == 1 and singles[0] == 0
    assert not mempool._decoded_ahead


def test_check_ahead_spends_nothing_on_txs_admit_would_refuse_unchecked() -> None:
    """A signature is worth checking ahead only if ``admit`` would ask for it: not
    for a full mempool, a peer over its share, a held or committed tx, or a client
    account still told to wait; nor for a group too small to batch."""
    world = World()
    chunk = [_attest(world, n).encode() for n in range(1, signature_rule.MIN_BATCH + 2)]
    full = _mempool(world, world.new_store(), max_txs=1)
    assert isinstance(full.admit(_attest_by(world, world.bank_a, 1).encode(), 0), Accepted)
    assert full.check_ahead(chunk, 0) == 0 and not full._decoded_ahead

    mempool = _mempool(world, world.new_store())
    assert isinstance(mempool.admit(chunk[0], 0, from_client=False, peer=1), Accepted)
    assert mempool.check_ahead(chunk, 0, from_client=False, peer=1) == len(chunk) - 1
    too_few = chunk[1 : signature_rule.MIN_BATCH]
    assert mempool.check_ahead(too_few, 0, from_client=False, peer=2) == 0
    # Decoded all the same, unchecked: admit checks each signature itself.
    assert [mempool._decoded_ahead[tx][1] for tx in too_few] == [None] * len(too_few)

    waiting = _mempool(world, world.new_store())
    waiting._refused_until[world.bank_b.identity.public_key] = (5_000, "RATE_LIMITED")
    assert waiting.check_ahead(chunk, 1_000) == 0
    assert waiting.check_ahead(chunk, 5_000) == len(chunk)

    store = world.new_store()
    committed = _mempool(world, store)
    monkey = pytest.MonkeyPatch()
    monkey.setattr(store, "tx_location", lambda tx_id: TxLocation(1, 0))  # all committed
    try:
        assert committed.check_ahead(chunk, 0) == 0
    finally:
        monkey.undo()


def test_what_check_ahead_keeps_for_txs_never_admitted_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Leftovers (a node stopping, gossip refused by its hash) stay until pushed
    out, oldest first, by count and by bytes."""
    world = World()
    txs = [_attest(world, n).encode() for n in range(1, 41)]
    mempool = _mempool(world, world.new_store())
    monkeypatch.setattr(node_mempool, "MAX_DECODED_AHEAD", 16)
    mempool.check_ahead(txs, 0)
    assert list(mempool._decoded_ahead) == txs[-16:]
    assert mempool._decoded_ahead_bytes == sum(len(tx) for tx in txs[-16:])
    monkeypatch.setattr(node_mempool, "MAX_DECODED_AHEAD_BYTES", 10 * len(txs[0]))
    mempool.check_ahead(txs[:20], 0)
    assert len(mempool._decoded_ahead) == 10
    assert mempool._decoded_ahead_bytes <= 10 * len(txs[0])
