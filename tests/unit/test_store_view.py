"""StateView overlays (a block view over a store, tx views over it) against a dict model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import state as state_module
from ledger.state import StateDelta, StateKeyError, StateView, state_key
from ledger.store import MemoryStore
from tests.store_writes import block_write

keys = st.builds(state_key, st.sampled_from([b"out", b"outs", b"acct"]), st.binary(max_size=3))
values = st.binary(max_size=4)
ops = st.lists(
    st.tuples(st.sampled_from(["put", "delete"]), keys, values),
    max_size=12,
)


def apply_ops(
    view: StateView, model: dict[bytes, bytes], changes: list[tuple[str, bytes, bytes]]
) -> None:
    for op, key, value in changes:
        if op == "put":
            view.put(key, value)
            model[key] = value
        else:
            view.delete(key)
            model.pop(key, None)


@given(
    st.dictionaries(keys, values, max_size=15),
    st.lists(st.tuples(ops, st.booleans()), max_size=6),
    st.sampled_from([b"", b"out", b"out:", b"outs:", b"acct:"]),
)
def test_views_behave_like_a_dict(
    base: dict[bytes, bytes],
    txs: list[tuple[list[tuple[str, bytes, bytes]], bool]],
    prefix: bytes,
) -> None:
    store = MemoryStore()
    store.commit_block(block_write(0, bytes(32), b"g", b"", StateDelta(base.items()), []))
    block = store.view()
    model = dict(base)
    for changes, keep in txs:
        tx = block.child()
        tx_model = dict(model)
        apply_ops(tx, tx_model, changes)
        assert dict(tx.iter_state()) == tx_model
        for key in {k for _, k, _ in changes}:
            assert tx.get_state(key) == tx_model.get(key)
        if keep:
            block.merge(tx.delta())
            model = tx_model
        assert dict(block.iter_state()) == model
    listed = list(block.iter_state(prefix))
    assert listed == sorted((k, v) for k, v in model.items() if k.startswith(prefix))
    assert dict(store.iter_state()) == base  # nothing reached the store
    root = store.preview_state_root(block.delta())
    store.commit_block(block_write(1, b"\x01" * 32, b"b", b"", block.delta(), []))
    assert dict(store.iter_state()) == model
    assert store.state_root() == root
    assert store.verify_state_root() == root


def test_merging_and_copying_a_delta_do_not_check_its_keys_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A delta's keys are checked when set; a block's and the mempool's merges and
    copies used to check every key again (a regex per key per merge)."""
    tx = StateView(MemoryStore())
    tx.put(state_key(b"out", b"1"), b"a")
    tx.delete(state_key(b"acct", b"2"))
    block = StateView(MemoryStore())
    calls: list[bytes] = []
    real_check = state_module.check_state_key

    def counted_check(key: bytes) -> None:
        calls.append(key)
        real_check(key)

    monkeypatch.setattr(state_module, "check_state_key", counted_check)
    block.merge(tx.delta())
    assert dict(block.delta().items()) == {b"out:1": b"a", b"acct:2": None}
    assert calls == []
    with pytest.raises(StateKeyError):
        block.merge({b"no separator": b"x"})  # any other mapping is still checked
    assert calls == [b"no separator"]
