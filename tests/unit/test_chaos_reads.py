"""The chaos tool's own reads retry within the recovery bound (issue 12).

A 200-round kill-primary soak died with ``TIMEOUT: no answer within 10 s`` from one of
the tool's reads at load average 30-50. Here a fake node answers its first requests
only after the client's timeout, as a loaded node does; another is not running at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from client.sdk import VeilApiError
from devnet.chaos import read_chains
from devnet.chaos_checks import read_chain
from devnet.chaos_reads import NoAnswerError, Reads
from devnet.network import Devnet
from tests.unit.fake_node_api import TIP, SlowNode, running, unused_port

ATTEMPT_TIMEOUT_S = 0.3


@pytest.fixture
def slow_node() -> Iterator[SlowNode]:
    with running(SlowNode(stalls=2, stall_s=ATTEMPT_TIMEOUT_S * 3)) as server:
        yield server


def test_a_node_slower_than_the_timeout_is_read_again_until_it_answers(
    slow_node: SlowNode, tmp_path: Path
) -> None:
    devnet = Devnet(tmp_path, 1, slow_node.server_address[1])
    reads = Reads(devnet, budget_s=30.0, attempt_timeout_s=ATTEMPT_TIMEOUT_S)
    chain = read_chain(reads, 0)
    assert chain.hashes == tuple(bytes.fromhex(f"{h + 100:064x}") for h in range(1, TIP + 1))
    assert chain.tx_ids == {bytes.fromhex(f"{h:064x}") for h in range(1, TIP + 1)}
    # The two stalled requests timed out and were asked again: 1 status + 3 blocks + 2.
    assert slow_node.requests == 1 + TIP + 2


def test_one_attempt_alone_times_out_on_the_same_node(slow_node: SlowNode, tmp_path: Path) -> None:
    """The control: without the retry, the stalled read is the soak's TIMEOUT."""
    devnet = Devnet(tmp_path, 1, slow_node.server_address[1])
    reads = Reads(devnet, budget_s=30.0, attempt_timeout_s=ATTEMPT_TIMEOUT_S)
    with pytest.raises(VeilApiError, match="TIMEOUT"):
        reads.client(0).status()


class FakeTime:
    def __init__(self) -> None:
        self.now_s = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds


def test_a_stopped_node_is_no_answer_after_the_budget_with_backoff(tmp_path: Path) -> None:
    fake = FakeTime()
    devnet = Devnet(tmp_path, 1, unused_port())
    reads = Reads(devnet, budget_s=20.0, clock=fake.clock, sleep=fake.sleep)
    with pytest.raises(NoAnswerError, match=r"node 0: no answer to GET /v1/status within") as err:
        reads.from_node(0, "GET /v1/status", lambda c: c.status())
    assert fake.sleeps[:4] == [0.2, 0.4, 0.8, 1.6]
    assert max(fake.sleeps) == 5.0  # capped
    assert 15.0 <= err.value.waited_s <= 20.0
    assert "NODE_UNREACHABLE" in str(err.value)


def test_an_answer_is_not_retried(slow_node: SlowNode, tmp_path: Path) -> None:
    slow_node.stalls = 0
    fake = FakeTime()
    devnet = Devnet(tmp_path, 1, slow_node.server_address[1])
    reads = Reads(devnet, budget_s=20.0, sleep=fake.sleep, clock=fake.clock)
    with pytest.raises(VeilApiError, match="NOT_FOUND"):
        reads.from_node(0, "GET /v1/chain", lambda c: c.chain())
    assert fake.sleeps == [] and slow_node.requests == 1


def test_a_silent_node_at_the_checks_is_a_violation_not_a_crash(
    slow_node: SlowNode, tmp_path: Path
) -> None:
    slow_node.stalls = 0
    # Node 0 answers; nothing listens for node 1 (another loopback address).
    devnet = Devnet(tmp_path, 2, slow_node.server_address[1], ("127.0.0.1", "127.0.0.2"))
    reads = Reads(devnet, budget_s=1.0, attempt_timeout_s=ATTEMPT_TIMEOUT_S)
    violations: list[str] = []
    chains = read_chains(reads, None, violations)
    assert [c.index for c in chains] == [0]
    assert len(violations) == 1
    assert violations[0].startswith("node 1 did not serve its chain for the checks: node 1: no")
