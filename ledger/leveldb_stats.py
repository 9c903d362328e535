"""LevelDB's own account of its levels and compactions (the ``leveldb.stats`` property).

Why: on a long-running node the cost that grows with the chain is LevelDB's
compaction (docs/performance.md, "LevelDB's compression"), and it runs on
threads the event loop never sees. LevelDB keeps, per level, the files and
bytes it holds and what the compactions that wrote into it cost; plyvel
exposes that only as a text table, which this module parses::

                                   Compactions
    Level  Files Size(MB) Time(sec) Read(MB) Write(MB)
    --------------------------------------------------
      0        2        0         0        0         8
      1        4        8         7      168       168

LevelDB prints a level only once it has files or compaction time, and rounds
every figure to a whole MiB or second (``%8.0f``). A memtable flush counts as a
write into the level its table goes to: level 0 when its keys overlap what is
there (the chain store's hashed keys always do), else up to level 2 (the WAL's
keys, which only grow). So for the chain store every level's writes over level
0's is the write amplification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

STATS_PROPERTY: Final = b"leveldb.stats"
MIB: Final = 1 << 20
_HEADER: Final = ("Level", "Files", "Size(MB)", "Time(sec)", "Read(MB)", "Write(MB)")


class LevelStatsError(ValueError):
    """The property's text is not the table this module knows."""


@dataclass(frozen=True, slots=True)
class LevelStats:
    """One level as LevelDB reports it; bytes and seconds are whole MiB and seconds."""

    level: int
    files: int
    size_bytes: int
    compaction_seconds: int
    compaction_read_bytes: int
    compaction_written_bytes: int


def parse_leveldb_stats(text: str) -> tuple[LevelStats, ...]:
    """The levels of a ``leveldb.stats`` text, in order. ``LevelStatsError`` if the
    header is not LevelDB's, or a row is not six whole numbers."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    try:
        header_at = next(i for i, words in enumerate(lines) if tuple(words) == _HEADER)
    except StopIteration:
        raise LevelStatsError("no 'Level Files Size(MB) ...' header") from None
    rows = lines[header_at + 1 :]
    if rows and set("".join(rows[0])) == {"-"}:
        rows = rows[1:]
    levels: list[LevelStats] = []
    for words in rows:
        if len(words) != len(_HEADER):
            raise LevelStatsError(f"a row of {len(words)} fields: {' '.join(words)!r}")
        try:
            level, files, size_mb, seconds, read_mb, written_mb = (int(w) for w in words)
        except ValueError:
            raise LevelStatsError(f"a row that is not whole numbers: {' '.join(words)!r}") from None
        if min(level, files, size_mb, seconds, read_mb, written_mb) < 0:
            raise LevelStatsError(f"a negative figure: {' '.join(words)!r}")
        if levels and level <= levels[-1].level:
            raise LevelStatsError(f"level {level} after level {levels[-1].level}")
        levels.append(
            LevelStats(level, files, size_mb * MIB, seconds, read_mb * MIB, written_mb * MIB)
        )
    return tuple(levels)


def read_level_stats(db: object) -> tuple[LevelStats, ...]:
    """The levels of an open ``plyvel.DB``; none once it is closed or if LevelDB
    answers nothing (a scrape must never fail because the store is shutting down)."""
    get_property = getattr(db, "get_property", None)
    if get_property is None or getattr(db, "closed", True):
        return ()
    try:
        raw = get_property(STATS_PROPERTY)
    except RuntimeError:  # plyvel: closed between the check and the call
        return ()
    if not isinstance(raw, bytes):
        return ()
    return parse_leveldb_stats(raw.decode("ascii", errors="replace"))
