"""``benchmarks.pipeline_cpu`` carries real txs through a validator's steps."""

from __future__ import annotations

from benchmarks.pipeline_cpu import STEPS, attest_chain, run


def test_every_block_with_a_backlog_gives_a_sample_of_every_step() -> None:
    genesis, payloads = attest_chain(2, 12)
    samples = run(genesis, payloads, block_txs=4, backlog_blocks=1)
    assert set(samples) == set(STEPS)
    # Three blocks; the last has no block behind it to admit, so it is not timed.
    assert all(len(seconds) == 2 for seconds in samples.values())
    assert all(s >= 0 for seconds in samples.values() for s in seconds)
    assert sum(samples["admit"]) > 0  # an ed25519 check per tx cannot take no time
