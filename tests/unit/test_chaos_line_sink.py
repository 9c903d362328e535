"""The chaos tool's bridge from the load generator's console to its progress lines."""

from __future__ import annotations

from rich.console import Console

from devnet.chaos_load import LineSink


def test_each_complete_line_is_said_once_and_blank_lines_are_dropped() -> None:
    said: list[str] = []
    sink = LineSink(said.append)
    sink.write("proved 3")
    assert said == []  # a partial line waits for its end
    sink.write("/10, 2 tx/s\n\n  submitting 10 mixed txs for 5 s\nrest")
    assert said == ["proved 3/10, 2 tx/s", "submitting 10 mixed txs for 5 s"]


def test_a_rich_console_on_the_sink_is_not_a_terminal_and_prints_plain_lines() -> None:
    said: list[str] = []
    console = Console(file=LineSink(said.append), force_terminal=False, width=120)
    assert not console.is_terminal  # so the generator prints a line per step, not a bar
    console.print("registering and funding 4 senders through the 4 banks")
    assert said == ["registering and funding 4 senders through the 4 banks"]
