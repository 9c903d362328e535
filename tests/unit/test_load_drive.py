"""The load generator's dispatch (``devnet.load.drive``) shares a low rate over its lanes.

At the chaos tool's 8 tx/s a token comes every few 20 ms ticks; with a fixed lane order
every one went to the first ready lane, so one bank's attests went to one node and the
other banks' lanes stayed idle.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Coroutine

from devnet.load.drive import Driver, Lane
from devnet.load.txs import PreparedTx

LANES = 4


def _lanes() -> list[Lane]:
    return [
        Lane(
            "attest",
            bank,
            deque(PreparedTx(bytes([bank, i]) * 16, b"tx") for i in range(100)),
            chained=False,
        )
        for bank in range(LANES)
    ]


def test_one_token_at_a_time_goes_round_the_lanes() -> None:
    lanes = _lanes()
    driver = Driver(
        [f"http://node{i}" for i in range(LANES)], b"c", lanes, rate=8.0, max_in_flight=1
    )
    served: Counter[int] = Counter()

    def record(coroutine: Coroutine[object, object, None]) -> None:
        coroutine.close()  # nothing is sent: only who was picked matters

    driver._spawn = record  # type: ignore[method-assign]
    for _ in range(40):
        driver._tokens = 1.0
        driver._dispatch(now_s=0.0)
        for index, lane in enumerate(lanes):
            if lane.in_flight:
                served[index] += 1
                lane.in_flight = False  # its request came back before the next token
    assert served == {index: 10 for index in range(LANES)}


def test_a_busy_answer_moves_the_lane_to_the_next_node() -> None:
    """A node cut off from the others (chaos ``catch-up``) fills its mempool and answers
    every tx ``MEMPOOL_FULL`` for as long as the cut lasts; the lane tried that node again
    after each park, so a sender's transfer chain stopped for good (issue 12's catch-up run
    at 4e105e5: 5 of 20 chains held on the cut-off node 2)."""
    lanes = _lanes()
    driver = Driver(
        [f"http://node{i}" for i in range(LANES)], b"c", lanes, rate=8.0, max_in_flight=1
    )
    lane = lanes[2]
    tx = lane.txs[0]
    driver._on_result(lane, tx, {"error": {"code": "MEMPOOL_FULL"}}, 2, sent_s=0.0)
    assert lane.node == 3
    assert lane.txs[0] is tx and not lane.dead  # kept, to be sent again there
    assert driver.stats.busy["MEMPOOL_FULL"] == 1
    driver._on_result(lane, tx, {"error": {"code": "RATE_LIMITED"}}, 3, sent_s=0.0)
    assert lane.node == 0


def test_a_busy_answer_keeps_the_lane_where_its_acked_txs_are_open() -> None:
    """A bank's attests carry rising nonces. With nonces 0–9 acked at node 1 and not yet
    gossiped, nonce 10 sent to node 2 after a busy answer could commit first, and 0–9
    came back ``REPLAYED`` (102 of 19,819 attests in one 1,600/s run, eighth session)."""
    lanes = _lanes()
    driver = Driver(
        [f"http://node{i}" for i in range(LANES)], b"c", lanes, rate=8.0, max_in_flight=1
    )
    lane = lanes[1]
    acked, busy = lane.txs[0], lane.txs[1]
    driver._on_result(lane, acked, {"status": "pending"}, 1, sent_s=0.0)
    assert lane.open == {acked.tx_id} and lane.txs[0] is busy
    driver._on_result(lane, busy, {"error": {"code": "MEMPOOL_FULL"}}, 1, sent_s=0.0)
    assert lane.node == 1  # held: its open nonce is at node 1
    assert lane.parked_until_s > 0.0 and lane.txs[0] is busy
    driver._settle(acked.tx_id)  # what the commit poll does when it sees the block
    assert not lane.open and not driver._open
    driver._on_result(lane, busy, {"error": {"code": "MEMPOOL_FULL"}}, 1, sent_s=0.0)
    assert lane.node == 2  # nothing open any more: free to move on


def test_a_busy_item_parks_its_lane_for_the_wait_it_names() -> None:
    """An item's ``retry_after_ms`` (a rate window that frees in a fifth of a second),
    else a second: a batch's 200 has no ``Retry-After`` header to go by."""
    lanes = _lanes()
    driver = Driver(
        [f"http://node{i}" for i in range(LANES)], b"c", lanes, rate=8.0, max_in_flight=1
    )
    driver.clock = lambda: 10.0
    named: dict[str, object] = {"error": {"code": "RATE_LIMITED", "retry_after_ms": 200}}
    driver._on_result(lanes[0], lanes[0].txs[0], named, 0, sent_s=0.0)
    assert lanes[0].parked_until_s == 10.2
    driver._on_result(lanes[1], lanes[1].txs[0], {"error": {"code": "MEMPOOL_FULL"}}, 1, 0.0)
    assert lanes[1].parked_until_s == 11.0
