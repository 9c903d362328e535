"""The chain store's LevelDB tables carry a Bloom filter; reads answer as without one.

The filter is a pure speed-up (``benchmarks.store_reads``): a point read skips the
tables that cannot hold its key. These tests pin that the store asks for it, and
that every read (present keys, absent keys, deleted keys, across several tables
and a database whose tables were written with and without filters) answers
exactly what a plain dict of the writes answers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import plyvel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.leveldb_store import DEFAULT_BLOOM_FILTER_BITS, LevelDBBackend

KEYS = st.binary(min_size=1, max_size=40)
# Rounds of writes (None deletes), each one synced batch; a tiny write buffer turns
# them into several tables, so reads cross tables with and without filters.
ROUNDS = st.lists(
    st.dictionaries(KEYS, st.one_of(st.none(), st.binary(max_size=300)), max_size=60),
    min_size=1,
    max_size=6,
)


def test_the_store_opens_leveldb_with_a_bloom_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[dict[str, Any]] = []
    real_db = plyvel.DB

    def recording_db(path: str, **options: Any) -> Any:
        opened.append(options)
        return real_db(path, **options)

    monkeypatch.setattr(plyvel, "DB", recording_db)
    LevelDBBackend(tmp_path / "chain").close()
    LevelDBBackend(tmp_path / "plain", bloom_filter_bits=0).close()
    assert DEFAULT_BLOOM_FILTER_BITS == 10
    assert opened[0]["bloom_filter_bits"] == 10
    assert "bloom_filter_bits" not in opened[1]


@pytest.mark.parametrize(
    ("bits", "error"), [(-1, ValueError), (65, ValueError), (True, TypeError), ("10", TypeError)]
)
def test_a_bad_filter_size_is_refused_before_opening(
    tmp_path: Path, bits: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="bloom_filter_bits"):
        LevelDBBackend(tmp_path / "chain", bloom_filter_bits=bits)  # type: ignore[arg-type]
    assert not (tmp_path / "chain").exists()


@settings(max_examples=25, deadline=None)
@given(rounds=ROUNDS, probes=st.lists(KEYS, max_size=40), first_bits=st.sampled_from([0, 10]))
def test_reads_answer_as_a_dict_of_the_writes_with_and_without_filters(
    rounds: list[dict[bytes, bytes | None]], probes: list[bytes], first_bits: int
) -> None:
    expected: dict[bytes, bytes] = {}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "chain"
        # The first half of the rounds written with ``first_bits``, the rest after
        # reopening with the other setting: tables of both kinds in one database.
        half = len(rounds) // 2
        for bits, part in ((first_bits, rounds[:half]), (10 - first_bits, rounds[half:])):
            backend = LevelDBBackend(path, write_buffer_bytes=64 << 10, bloom_filter_bits=bits)
            for round_writes in part:
                backend.write(list(round_writes.items()))
                for key, value in round_writes.items():
                    if value is None:
                        expected.pop(key, None)
                    else:
                        expected[key] = value
            backend.close()
        for bits in (0, 10):
            backend = LevelDBBackend(path, bloom_filter_bits=bits)
            try:
                for key in [*expected, *probes]:
                    assert backend.get(key) == expected.get(key)
                assert dict(backend.iterate(b"")) == expected
                backend.compact()  # every table rewritten with this setting
                for key in [*expected, *probes]:
                    assert backend.get(key) == expected.get(key)
            finally:
                backend.close()
