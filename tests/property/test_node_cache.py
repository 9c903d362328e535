"""The C walk's node cache (ledger/native/node_cache.c, node_table.c) against a dict.

``NodeCache`` must answer every operation the tree uses exactly as the dict of
the Python walk does: the same nodes back (a leaf as an equal ``Leaf``), the
same length, membership and items, through growth, backward-shift deletion
at high load, leaves overwritten by interior nodes and back, and eviction.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.native import _smt
from ledger.state_root import Leaf, Node, StateRootError


@pytest.fixture(autouse=True)
def _native_setup() -> Iterator[None]:
    """Tests may lower the uint64 depth; put the default back afterwards."""
    yield
    _smt.setup(Leaf, StateRootError)


def random_node(rng: random.Random) -> Node:
    kind = rng.randrange(3)
    if kind == 0:
        return None
    if kind == 1:
        return rng.randbytes(32)
    return Leaf(rng.randbytes(32), rng.randbytes(32))


def check_same(cache: _smt.NodeCache, model: dict[int, Node], probes: list[int]) -> None:
    assert len(cache) == len(model)
    assert dict(cache.items()) == model
    assert len(cache.items()) == len(model)  # no position twice
    for position in probes:
        assert (position in cache) == (position in model)
        assert cache.get(position, "absent") == model.get(position, "absent")


def test_a_full_table_and_shifted_deletes_answer_as_a_dict() -> None:
    """Thousands of positions, inserted, overwritten and deleted at random while
    the table runs close to its 3/4 load: every run of probes and every shift
    back after a delete is exercised, and the leaf slab recycles its slots."""
    rng = random.Random(20261203)
    cache = _smt.NodeCache()
    model: dict[int, Node] = {}
    universe = [rng.randrange(1, 1 << 40) for _ in range(6000)] + list(range(1, 3000))
    for round_ in range(12):
        for _ in range(4000):
            position = rng.choice(universe)
            if rng.random() < 0.4 and model:
                gone = rng.choice(list(model)) if rng.random() < 0.8 else position
                if gone in model:
                    del cache[gone]
                    del model[gone]
                else:
                    with pytest.raises(KeyError):
                        del cache[gone]
            else:
                node = random_node(rng)
                cache[position] = node
                model[position] = node
        check_same(cache, model, rng.sample(universe, 500))
        if round_ == 6:
            cache.keep_below(1 << 11)
            model = {position: node for position, node in model.items() if position < 1 << 11}
            check_same(cache, model, universe[-3000:])


def test_apply_caches_writes_and_empties_as_apply_update_does() -> None:
    """A position written as None, or named empty, is cached as an empty subtree:
    the next walk past it must not read the store for it."""
    cache = _smt.NodeCache()
    leaf = Leaf(b"p" * 32, b"v" * 32)
    cache.apply({1: b"h" * 32, 2: leaf, 3: None}, (6, 7))
    assert dict(cache.items()) == {1: b"h" * 32, 2: leaf, 3: None, 6: None, 7: None}
    cache.apply({2: None, 6: b"i" * 32}, ())
    assert dict(cache.items()) == {1: b"h" * 32, 2: None, 3: None, 6: b"i" * 32, 7: None}
    with pytest.raises(TypeError, match="position"):
        cache.apply({}, (8, b"x"))  # type: ignore[arg-type]
    with pytest.raises(StateRootError, match="corrupt"):
        cache.apply({9: "not a node"}, ())
    cache.clear()
    assert len(cache) == 0
    assert cache.get(1) is None


def test_positions_deeper_than_the_uint64_depth_live_in_a_dict() -> None:
    """Below the uint64 depth a position is a Python int (a 63-bit shared path);
    ``setup``'s lower depth sends small positions there too."""
    _smt.setup(Leaf, StateRootError, 3)
    cache = _smt.NodeCache()
    deep = (1 << 300) | 12345
    cache[deep] = b"d" * 32
    cache[9] = b"e" * 32  # depth 3: in the table
    cache[17] = Leaf(b"p" * 32, b"v" * 32)  # depth 4: in the dict
    assert len(cache) == 3
    assert cache[deep] == b"d" * 32
    cache.keep_below(16)
    assert dict(cache.items()) == {9: b"e" * 32}


def test_bad_positions_are_refused() -> None:
    cache = _smt.NodeCache()
    with pytest.raises(TypeError):
        cache[b"1"] = None  # type: ignore[index]
    with pytest.raises(ValueError, match="positive"):
        cache[0] = None
    with pytest.raises(ValueError, match="positive"):
        cache.get(-4)
    with pytest.raises(TypeError):
        cache.apply([(1, None)], ())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.apply({}, [1])  # type: ignore[arg-type]
    assert len(cache) == 0


positions = st.integers(min_value=1, max_value=1 << 20) | st.integers(min_value=1, max_value=64)
nodes = (
    st.none()
    | st.binary(min_size=32, max_size=32)
    | st.builds(Leaf, st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
)
operations = st.lists(
    st.tuples(st.sampled_from(["set", "del", "apply", "keep"]), positions, nodes), max_size=200
)


@settings(max_examples=200)
@given(operations, st.sampled_from([62, 5, 0]))
def test_any_operations_answer_as_a_dict(
    steps: list[tuple[str, int, Node]], small_depth: int
) -> None:
    _smt.setup(Leaf, StateRootError, small_depth)
    cache = _smt.NodeCache()
    model: dict[int, Node] = {}
    for operation, position, node in steps:
        if operation == "set":
            cache[position] = node
            model[position] = node
        elif operation == "del":
            if position in model:
                del cache[position]
                del model[position]
        elif operation == "apply":
            cache.apply({position: node}, (position + 1,))
            model[position] = node
            model[position + 1] = None
        else:
            cache.keep_below(position)
            model = {kept: value for kept, value in model.items() if kept < position}
    check_same(cache, model, [position for _, position, _ in steps])
