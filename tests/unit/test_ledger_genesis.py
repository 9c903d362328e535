"""Genesis: JSON round trip, chain id, consistency checks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ledger.codec import DecodeError
from ledger.genesis import (
    DEFAULT_PARAMS,
    AccountInfo,
    AssetInfo,
    Genesis,
    GenesisError,
    MemberInfo,
    ValidatorInfo,
    asset_id_for,
    chain_id_of,
    genesis_from_json,
    genesis_to_json,
    load_genesis,
    save_genesis,
)
from ledger.identity import SigningIdentity

BANK_A = SigningIdentity.from_seed(b"\x01" * 32)
BANK_B = SigningIdentity.from_seed(b"\x02" * 32)
CLIENT = SigningIdentity.from_seed(b"\x03" * 32)
VALIDATORS = [SigningIdentity.from_seed(bytes([0x10 + i]) * 32) for i in range(7)]


def validators(count: int) -> tuple[ValidatorInfo, ...]:
    return tuple(
        ValidatorInfo(f"v{i}", VALIDATORS[i].public_key, f"http://127.0.0.1:{8000 + i}", "")
        for i in range(count)
    )


def make_genesis(**changes: object) -> Genesis:
    fields: dict[str, object] = {
        "version": 1,
        "chain_name": "veil-test",
        "genesis_time_ms": 1_700_000_000_000,
        "validators": validators(4),
        "members": (
            MemberInfo("Bank A", BANK_A.public_key, b"\xa1" * 32),
            MemberInfo("Bank B", BANK_B.public_key, b"\xb1" * 32),
        ),
        "accounts": (AccountInfo(CLIENT.public_key, b"\xc1" * 32, BANK_A.public_key),),
        "assets": (
            AssetInfo(asset_id_for(BANK_A.public_key, "USD.A"), "USD.A", BANK_A.public_key),
        ),
        "auditor_memo_public_key": b"\xee" * 32,
        "params": DEFAULT_PARAMS,
    }
    fields.update(changes)
    return Genesis(**fields)  # type: ignore[arg-type]


def test_json_round_trip_keeps_the_chain_id(tmp_path: Path) -> None:
    genesis = make_genesis()
    path = tmp_path / "genesis.json"
    save_genesis(genesis, path)
    loaded = load_genesis(path)
    assert loaded == genesis
    assert loaded.chain_id == genesis.chain_id == chain_id_of(genesis)
    assert len(genesis.chain_id) == 32


def test_canonical_record_round_trip() -> None:
    genesis = make_genesis()
    assert Genesis.decode(genesis.encode()) == genesis


def test_any_change_changes_the_chain_id() -> None:
    base = make_genesis().chain_id
    assert make_genesis(chain_name="other").chain_id != base
    assert make_genesis(genesis_time_ms=1).chain_id != base
    params = dataclasses.replace(DEFAULT_PARAMS, max_block_txs=7)
    assert make_genesis(params=params).chain_id != base
    assert make_genesis(auditor_memo_public_key=b"\xef" * 32).chain_id != base


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 2},
        {"validators": ()},
        {"members": ()},
        {"members": (MemberInfo("A", BANK_A.public_key, b"\xa1" * 32),) * 2},
        {"accounts": (AccountInfo(CLIENT.public_key, b"\xc1" * 32, CLIENT.public_key),)},
        {"accounts": (AccountInfo(BANK_A.public_key, b"\xc1" * 32, BANK_A.public_key),)},
        {"assets": (AssetInfo(b"\x09" * 32, "X", CLIENT.public_key),)},
        {"assets": (AssetInfo(b"\x09" * 32, "X", BANK_A.public_key),) * 2},
        {"params": dataclasses.replace(DEFAULT_PARAMS, max_block_txs=0)},
    ],
)
def test_inconsistent_genesis_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(GenesisError):
        make_genesis(**changes)


@pytest.mark.parametrize("count", [0, 1, 3, 5, 6])
def test_a_validator_count_pbft_cannot_run_is_refused(count: int) -> None:
    # What ReplicaConfig refuses: fewer than 4, or n != 3f+1.
    with pytest.raises(GenesisError, match=f"need n = 3f\\+1 >= 4 validators, got {count}"):
        make_genesis(validators=validators(count))


@pytest.mark.parametrize("count", [4, 7])
def test_validator_counts_of_3f_plus_1_are_accepted(count: int) -> None:
    assert len(make_genesis(validators=validators(count)).validators) == count


@pytest.mark.parametrize(
    ("interval", "window"), [(16, 16), (16, 8), (16, 40), (16, 0), (0, 64), (3, 7)]
)
def test_a_watermark_window_not_a_multiple_of_2_intervals_is_refused(
    interval: int, window: int
) -> None:
    params = dataclasses.replace(
        DEFAULT_PARAMS, checkpoint_interval_blocks=interval, watermark_window_blocks=window
    )
    with pytest.raises(GenesisError, match="checkpoint interval"):
        make_genesis(params=params)


@pytest.mark.parametrize(("interval", "window"), [(16, 32), (16, 64), (1, 2), (5, 15)])
def test_a_watermark_window_of_2_or_more_intervals_is_accepted(interval: int, window: int) -> None:
    params = dataclasses.replace(
        DEFAULT_PARAMS, checkpoint_interval_blocks=interval, watermark_window_blocks=window
    )
    assert make_genesis(params=params).params.watermark_window_blocks == window


def test_json_is_strict() -> None:
    document = json.loads(genesis_to_json(make_genesis()))
    document["extra"] = 1
    with pytest.raises(GenesisError, match="unknown keys"):
        genesis_from_json(json.dumps(document))
    document = json.loads(genesis_to_json(make_genesis()))
    del document["auditor_memo_public_key"]
    with pytest.raises(GenesisError, match=r"missing keys \['auditor_memo_public_key'\]"):
        genesis_from_json(json.dumps(document))
    document = json.loads(genesis_to_json(make_genesis()))
    del document["validators"][0]["name"]
    with pytest.raises(GenesisError, match=r"missing keys \['name'\]"):
        genesis_from_json(json.dumps(document))
    document = json.loads(genesis_to_json(make_genesis()))
    document["auditor_memo_public_key"] = "ab"
    with pytest.raises(GenesisError, match="canonically"):
        genesis_from_json(json.dumps(document))
    document = json.loads(genesis_to_json(make_genesis()))
    document["kind"] = "other"
    with pytest.raises(GenesisError):
        genesis_from_json(json.dumps(document))
    with pytest.raises(GenesisError):
        genesis_from_json("{not json")


def test_decoding_an_inconsistent_record_is_a_decode_error() -> None:
    raw = make_genesis().to_value()
    bad = (2, *raw[1:])
    from ledger.codec import encode_value

    with pytest.raises(DecodeError):
        Genesis.decode(encode_value(bad))
