"""``node.config``: the replica config a validator derives from the genesis."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.genesis import Genesis
from node.config import (
    REQUEST_ID_WINDOW_HEIGHTS,
    VIEW_CHANGE_BACKOFF_FACTOR,
    NodeConfigError,
    genesis_state_root,
    replica_config_from_genesis,
    ticks_from_ms,
)
from tests.spec.ledger_world import World


@pytest.fixture(scope="module")
def genesis() -> Genesis:
    return World().genesis


def test_each_validator_gets_its_index_and_the_genesis_settings(genesis: Genesis) -> None:
    params = genesis.params
    for index, validator in enumerate(genesis.validators):
        config = replica_config_from_genesis(genesis, validator.public_key, tick_ms=100)
        assert config.replica_id == index
        assert config.chain_id == genesis.chain_id
        assert config.validators == tuple(v.public_key for v in genesis.validators)
        assert config.checkpoint_interval == params.checkpoint_interval_blocks
        assert config.watermark_window == params.watermark_window_blocks
        assert config.max_batch_size == params.max_block_txs
        assert config.max_request_bytes == params.max_tx_bytes
        assert config.view_change_timeout_ticks == params.view_change_timeout_ms // 100
        assert config.max_view_change_timeout_ticks == (
            VIEW_CHANGE_BACKOFF_FACTOR * config.view_change_timeout_ticks
        )


def test_a_long_watermark_window_widens_the_request_id_window(genesis: Genesis) -> None:
    # ReplicaConfig refuses a request-id window shorter than the watermark window.
    params = dataclasses.replace(
        genesis.params, checkpoint_interval_blocks=128, watermark_window_blocks=512
    )
    long_window = dataclasses.replace(genesis, params=params)
    config = replica_config_from_genesis(
        long_window, long_window.validators[0].public_key, tick_ms=100
    )
    assert config.request_id_window_heights == 512
    default = replica_config_from_genesis(genesis, genesis.validators[0].public_key, tick_ms=100)
    assert default.request_id_window_heights == REQUEST_ID_WINDOW_HEIGHTS


def test_the_genesis_state_root_is_the_ledgers_root_at_height_0(genesis: Genesis) -> None:
    store = World().new_store()  # commit_genesis through the real store
    assert genesis_state_root(genesis) == store.state_root()
    config = replica_config_from_genesis(genesis, genesis.validators[0].public_key, tick_ms=10)
    assert config.genesis_state_root == store.state_root()


@pytest.mark.parametrize(
    ("duration_ms", "tick_ms", "ticks"),
    [(4_000, 100, 40), (4_001, 100, 41), (1, 100, 1), (0, 100, 1), (99, 1, 99), (5, 7, 1)],
)
def test_ms_become_ticks_rounded_up(duration_ms: int, tick_ms: int, ticks: int) -> None:
    assert ticks_from_ms(duration_ms, tick_ms) == ticks


def test_a_timeout_never_fires_earlier_than_the_genesis_says(genesis: Genesis) -> None:
    params = dataclasses.replace(genesis.params, view_change_timeout_ms=4_050)
    slow = dataclasses.replace(genesis, params=params)
    config = replica_config_from_genesis(slow, slow.validators[1].public_key, tick_ms=100)
    assert config.view_change_timeout_ticks * 100 >= 4_050
    assert config.view_change_timeout_ticks == 41


def test_a_key_that_is_no_validator_is_refused_naming_the_chain(genesis: Genesis) -> None:
    member_key = genesis.members[0].public_key
    with pytest.raises(NodeConfigError, match=genesis.chain_id.hex()):
        replica_config_from_genesis(genesis, member_key, tick_ms=100)
    with pytest.raises(NodeConfigError, match="not a validator"):
        replica_config_from_genesis(genesis, b"short", tick_ms=100)


@pytest.mark.parametrize("tick_ms", [0, -1, True, 2.5])
def test_a_bad_tick_length_is_refused(genesis: Genesis, tick_ms: object) -> None:
    with pytest.raises(NodeConfigError, match="tick_ms"):
        replica_config_from_genesis(
            genesis,
            genesis.validators[0].public_key,
            tick_ms=tick_ms,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    ("cut_ms", "tick_ms", "ticks"), [(0, 100, 0), (100, 100, 1), (150, 100, 2)]
)
def test_the_batch_cut_becomes_whole_ticks_and_0_stays_off(
    genesis: Genesis, cut_ms: int, tick_ms: int, ticks: int
) -> None:
    key = genesis.validators[0].public_key
    config = replica_config_from_genesis(genesis, key, tick_ms=tick_ms, batch_cut_ms=cut_ms)
    assert config.batch_cut_ticks == ticks
