"""Simulated durable storage with an OS page cache: writes are lost on a crash
unless synced, and the runtime syncs before it sends, as the Persist contract says."""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.persistence import Record


@dataclass(slots=True)
class SimStorage:
    durable: list[Record] = field(default_factory=list)
    unsynced: list[Record] = field(default_factory=list)
    lost_records: int = 0

    def write(self, records: tuple[Record, ...]) -> None:
        self.unsynced.extend(records)

    def sync(self) -> None:
        self.durable.extend(self.unsynced)
        self.unsynced.clear()

    def crash(self) -> None:
        self.lost_records += len(self.unsynced)
        self.unsynced.clear()
