"""``EventEncoder``: each event's text is made once and shared, for the events a
subscriber that has not overflowed can still be behind on."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest

from node.api import events
from node.api.events import EventEncoder, event_message
from node.event_hub import EventHub
from node.services import BlockCommitted, ChainEvent, NodeServices, Pending, TxStatusChanged

# Blocks and pending txs are encoded from the event alone.
NO_SERVICES = cast(NodeServices, object())


def _block(height: int) -> BlockCommitted:
    return BlockCommitted(height, bytes([height]) * 32, b"\x00" * 32, (b"\x07" * 32,), height)


def counting(monkeypatch: pytest.MonkeyPatch) -> list[ChainEvent]:
    built: list[ChainEvent] = []

    def counted(event: ChainEvent, *args: Any) -> Any:
        built.append(event)
        return event_message(event, *args)

    monkeypatch.setattr(events, "event_message", counted)
    return built


def test_the_text_is_the_documented_json_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    built = counting(monkeypatch)
    encoder = EventEncoder(NO_SERVICES, capacity=4)
    block, pending = _block(3), TxStatusChanged(Pending(b"\x01" * 32))
    texts = [encoder.text(event) for event in (block, pending, block, pending, block)]
    assert built == [block, pending]
    assert texts[0] == json.dumps(event_message(block, NO_SERVICES))
    assert json.loads(texts[1]) == {"type": "tx_status", "id": "01" * 32, "status": "pending"}
    assert texts[2] is texts[0] and texts[3] is texts[1]


def test_only_the_last_capacity_events_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    built = counting(monkeypatch)
    encoder = EventEncoder(NO_SERVICES, capacity=2)
    first, second, third = _block(1), _block(2), _block(3)
    before = [encoder.text(event) for event in (first, second, third)]
    assert [encoder.text(event) for event in (second, third)] == before[1:]
    assert len(built) == 3
    assert encoder.text(first) == before[0]  # made again: a miss is never a wrong text
    assert built == [first, second, third, first]
    encoder.clear()
    encoder.text(third)
    assert len(built) == 5


def test_a_subscriber_a_full_queue_behind_still_shares_the_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The API's capacity is ``max_queue + 1``: a subscriber that has not overflowed finds
    every event another subscriber encoded, however far ahead that one is."""
    built = counting(monkeypatch)
    max_queue = 4

    async def run() -> tuple[list[str], list[str]]:
        hub = EventHub()
        encoder = EventEncoder(NO_SERVICES, capacity=max_queue + 1)
        ahead, behind = aiter(hub.subscribe(max_queue)), aiter(hub.subscribe(max_queue))
        ahead_texts: list[str] = []
        behind_texts: list[str] = []
        for height in range(1, 3 * max_queue + 1):
            hub.publish(_block(height))
            ahead_texts.append(encoder.text(await anext(ahead)))
            if height % max_queue == 0:  # the other catches up only on a full queue
                for _ in range(max_queue):
                    behind_texts.append(encoder.text(await anext(behind)))
        hub.close_all()
        return ahead_texts, behind_texts

    ahead_texts, behind_texts = asyncio.run(run())
    assert behind_texts == ahead_texts
    assert len(built) == 3 * max_queue
