"""Send messages and write-ahead-log records through ``consensus.wire``, as the node will.

In a wire seed every message is encoded and decoded before delivery and every
persisted record before it reaches storage, so the wire's size limit and
strict decoding meet real protocol traffic. An honest replica must never build
something the wire refuses: that is a failure of the run. A byzantine one
may; its message is then dropped, as the node's transport would drop it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from consensus.messages import Message
from consensus.persistence import Record
from consensus.wire import WireError, decode_message, decode_record, encode_message, encode_record

MAX_CACHED = 4096
"""Round trips remembered by object identity: retransmission resends the same
objects, and encoding is a pure function of them."""


@dataclass(slots=True)
class WireCheck:
    largest_bytes: int = 0
    refusals: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    _messages: dict[int, tuple[Message, Message | None]] = field(default_factory=dict)
    _records: dict[int, tuple[Record, Record | None]] = field(default_factory=dict)

    def message(self, message: Message, honest: bool) -> Message | None:
        """The message as the receiver decodes it, or None if the wire refuses it."""
        self.counts["wire_messages"] += 1
        cached = self._messages.get(id(message))
        if cached is not None and cached[0] is message:
            decoded = cached[1]
        else:
            decoded = self._round_trip_message(message)
            if len(self._messages) >= MAX_CACHED:
                self._messages.clear()
            self._messages[id(message)] = (message, decoded)
        if decoded is None:
            self.counts["wire_refused"] += 1
            if honest:
                self.refusals.append(f"wire refused an honest {type(message).__name__}")
        return decoded

    def _round_trip_message(self, message: Message) -> Message | None:
        try:
            data = encode_message(message)
            decoded = decode_message(data)
        except WireError:
            return None
        self.largest_bytes = max(self.largest_bytes, len(data))
        if decoded != message:
            self.refusals.append(f"wire changed a {type(message).__name__} in a round trip")
        return decoded

    def records(self, records: tuple[Record, ...]) -> tuple[Record, ...]:
        """The records as a restart would read them back; refusals are failures
        (a replica whose log holds an unreadable record cannot restart)."""
        out: list[Record] = []
        for record in records:
            self.counts["wire_records"] += 1
            cached = self._records.get(id(record))
            if cached is not None and cached[0] is record:
                decoded = cached[1]
            else:
                decoded = self._round_trip_record(record)
                if len(self._records) >= MAX_CACHED:
                    self._records.clear()
                self._records[id(record)] = (record, decoded)
            if decoded is None:
                self.refusals.append(f"wire refused a {type(record).__name__} record")
            else:
                out.append(decoded)
        return tuple(out)

    def _round_trip_record(self, record: Record) -> Record | None:
        try:
            data = encode_record(record)
            decoded = decode_record(data)
        except WireError:
            return None
        self.largest_bytes = max(self.largest_bytes, len(data))
        if decoded != record:
            self.refusals.append(f"wire changed a {type(record).__name__} record")
        return decoded
