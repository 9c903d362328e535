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
