"""Recorded ``apply_tx`` results survive other txs of the same asset: the asset's
totals are a sum, so a result is rebased onto them instead of decided again."""

from __future__ import annotations

import pytest

from ledger import execute as execute_module
from ledger.proof_cache import ProofCache
from ledger.rules import U64_MAX, AssetRecord, range_statement, rebase_asset_totals
from ledger.stateless_cache import StatelessCache
from ledger.tx import decode_tx
from node.mempool import Mempool, MempoolLimits
from node.services import Accepted
from privacy import group
from privacy.pedersen import commit
from tests.property.test_recorded_apply_differential import WORLD, execute_with
from tests.unit.test_ledger_mempool import two_independent_transfers

ISSUER = bytes(32)


def _record(issued: int, excess: bytes, *, symbol: str = "USD", issuer: bytes = ISSUER) -> bytes:
    return AssetRecord(symbol, issuer, issued, excess).encode()


def test_the_totals_move_by_what_the_tx_added() -> None:
    a, b, c = (commit(v, group.random_scalar()) for v in (1, 2, 3))
    read, written = _record(10, a), _record(15, group.add(a, b))  # an issue of 5, excess b
    moved = rebase_asset_totals(read, written, _record(40, c))
    assert moved == _record(45, group.add(c, b))


@pytest.mark.parametrize(
    ("current", "why"),
    [
        (_record(40, group.IDENTITY, symbol="EUR"), "another symbol"),
        (_record(40, group.IDENTITY, issuer=b"\x01" * 32), "another issuer"),
        (_record(U64_MAX - 4, group.IDENTITY), "the issue would overflow"),
        (b"\x01\x02", "not an asset record"),
    ],
)
def test_a_change_the_rules_could_decide_on_is_not_rebased(current: bytes, why: str) -> None:
    read, written = _record(10, group.IDENTITY), _record(15, group.IDENTITY)
    assert rebase_asset_totals(read, written, current) is None, why


def test_a_lowered_total_is_not_a_tx_of_these_rules() -> None:
    assert (
        rebase_asset_totals(
            _record(10, group.IDENTITY), _record(9, group.IDENTITY), _record(40, group.IDENTITY)
        )
        is None
    )


def test_a_block_in_another_order_than_admission_reuses_every_recorded_transfer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backup admits txs in its gossip order and executes the primary's: before,
    every transfer after the first of an asset was decided again."""
    world = WORLD
    store, payloads = two_independent_transfers(world)
    cache = StatelessCache()
    limits = MempoolLimits(max_txs=10, min_backlog_txs=10)
    verified = ProofCache()
    mempool = Mempool(store, world.genesis, verified, limits, stateless_cache=cache)
    for payload in payloads:
        statement = range_statement(
            decode_tx(payload, world.chain_id, max_tx_bytes=world.genesis.params.max_tx_bytes)
        )
        assert statement is not None
        verified.verify(statement)  # as the proof pool would have
        assert isinstance(mempool.admit(payload, 0), Accepted)
    spec = execute_with(store, payloads[::-1], ProofCache(), None, recorded=False)
    ran: list[bytes] = []
    real_apply = execute_module.apply_tx

    def counting_apply(view: object, dtx: object) -> object:
        ran.append(b"")
        return real_apply(view, dtx)  # type: ignore[arg-type]

    monkeypatch.setattr(execute_module, "apply_tx", counting_apply)
    reused = execute_with(store, payloads[::-1], ProofCache(), cache, recorded=True)
    assert ran == []
    assert reused.block.encode() == spec.block.encode() and not reused.rejected
    assert tuple(reused.result.delta.items()) == tuple(spec.result.delta.items())
