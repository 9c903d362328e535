"""``[api] max_event_subscribers``: what init writes, what is refused, and the API's default."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.api.context import DEFAULT_MAX_EVENT_SUBSCRIBERS
from node.settings import (
    ApiSection,
    NodeSection,
    NodeSettings,
    SettingsError,
    parse_node_settings,
    render_node_toml,
)

BASE = Path("/etc/veil")
WRITTEN = "max_event_subscribers = 64"


def _written() -> str:
    settings = NodeSettings(node=NodeSection("genesis.json", "key.json", "data"), base_dir=BASE)
    return render_node_toml(settings)


def test_the_node_and_the_api_share_the_default() -> None:
    assert ApiSection().max_event_subscribers == DEFAULT_MAX_EVENT_SUBSCRIBERS == 64


def test_init_writes_and_documents_it_and_it_reads_back() -> None:
    text = _written()
    header, values = text.split("\n\n", 1)
    assert "max_event_subscribers (64)" in header
    assert WRITTEN in values
    assert parse_node_settings(text, BASE).api.max_event_subscribers == 64
    changed = text.replace(WRITTEN, "max_event_subscribers = 8")
    assert parse_node_settings(changed, BASE).api.max_event_subscribers == 8


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "[api] max_event_subscribers must be positive, got 0"),
        ("-1", "[api] max_event_subscribers must be positive, got -1"),
        ('"64"', "[api] max_event_subscribers must be a int"),
        ("true", "[api] max_event_subscribers must be a int"),
        ("6.4", "[api] max_event_subscribers must be a int"),
    ],
)
def test_a_bad_value_is_refused_with_its_reason(value: str, problem: str) -> None:
    text = _written().replace(WRITTEN, f"max_event_subscribers = {value}")
    with pytest.raises(SettingsError) as error:
        parse_node_settings(text, BASE)
    assert problem in str(error.value)
