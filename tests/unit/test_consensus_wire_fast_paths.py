"""The wire codec's fast path for a batch's requests (issue 9, CPU per attest) builds
exactly what the general per-dataclass decoder builds, and refuses exactly what it
refuses, with the same message."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import wire
from consensus.messages import (
    MAX_REQUEST_ID_BYTES,
    PrePrepare,
    ProposalMetadata,
    Request,
)
from consensus.wire import WireError, decode_message, encode_message


def _reference(value: object) -> tuple[Request, ...]:
    """The tuple decoder before the fast path, for ``tuple[Request, ...]``."""
    if not isinstance(value, list):
        raise WireError("expected an array")
    return tuple([wire._dataclass(Request, v) for v in value])


def _outcome(decode: Callable[[object], object], value: object) -> tuple[str, str]:
    try:
        return ("ok", repr(decode(value)))
    except WireError as exc:
        return ("WireError", str(exc))


_scalars = st.one_of(
    st.binary(min_size=0, max_size=MAX_REQUEST_ID_BYTES + 2),
    st.text(max_size=3),
    st.integers(min_value=-2, max_value=1 << 65),
    st.booleans(),
    st.none(),
)
_items = st.one_of(
    st.tuples(st.binary(min_size=1, max_size=MAX_REQUEST_ID_BYTES), st.binary(max_size=40)).map(
        list
    ),
    st.lists(_scalars, max_size=3),
    st.tuples(_scalars, _scalars).map(list),
    st.tuples(_scalars, _scalars),
    _scalars,
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.lists(_items, max_size=6), _scalars, st.tuples(_items)))
def test_the_request_batch_decoder_matches_the_general_one(value: object) -> None:
    fast = wire._decoder(tuple[Request, ...])
    assert _outcome(fast, value) == _outcome(_reference, value)


def test_a_valid_batch_takes_the_fast_path_and_round_trips() -> None:
    batch = tuple(Request(bytes([i]) * 32, b"payload %d" % i) for i in range(5))
    fast = wire._decoder(tuple[Request, ...])
    assert fast([[r.request_id, r.payload] for r in batch]) == batch
    message = PrePrepare(0, 1, b"d" * 32, batch, ProposalMetadata(5, 0), 0, b"s" * 64)
    assert decode_message(encode_message(message)) == message
