"""node.toml: what init writes reads back; every bad value is refused with its reason."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from ledger import state_root
from node.main import open_chain_store
from node.settings import (
    NodeSection,
    NodeSettings,
    SettingsError,
    parse_node_settings,
    render_node_toml,
)
from tests.unit.test_state_history import commit_random_blocks

BASE = Path("/etc/veil")


def _written() -> str:
    settings = NodeSettings(node=NodeSection("genesis.json", "key.json", "data"), base_dir=BASE)
    return render_node_toml(settings)


def test_what_init_writes_reads_back_with_defaults_and_relative_paths() -> None:
    text = _written()
    assert text.startswith("# node.toml")
    settings = parse_node_settings(text, BASE)
    assert settings.api.host == "127.0.0.1" and settings.api.port == 8700
    assert (settings.api.tls_cert, settings.api.tls_key) == ("", "")
    assert settings.peer.allow_plain is False and settings.peer.endpoints == []
    assert settings.path(settings.node.data_dir) == BASE / "data"
    assert settings.mempool_limits().max_txs == 20_000
    assert settings.node.wal_compact_records == 4096
    assert settings.node.state_history_heights == 1024
    assert (settings.mempool.proof_batch_wait_ms, settings.mempool.proof_batch_max) == (40, 64)
    assert settings.path("/abs/key.json") == Path("/abs/key.json")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("[api]\n", "[api]\nbogus = 1\n"), "[api] has unknown option 'bogus'"),
        (("port = 8700", 'port = "8700"'), "[api] port must be a int"),
        (("port = 8700", "port = 70000"), "[api] port 70000 is not a port"),
        (("tick_ms = 100", "tick_ms = 0"), "[node] tick_ms must be positive"),
        (
            ("wal_compact_records = 4096", "wal_compact_records = 0"),
            "[node] wal_compact_records must be positive",
        ),
        (("allow_plain = false", "allow_plain = 1"), "[peer] allow_plain must be a bool"),
        # The first tls_cert is [api]'s: a certificate without its key cannot serve HTTPS.
        (('tls_cert = ""', 'tls_cert = "api.pem"'), "[api] tls_cert and tls_key must be set"),
        (('tls_key = ""', 'tls_key = "api.key"'), "[api] tls_cert and tls_key must be set"),
        (("endpoints = []", "endpoints = [1]"), "[peer] endpoints must be strings"),
        (('level = "info"', 'level = "loud"'), "[log] level must be one of"),
        (("\n[log]\n", "\n[logs]\n"), "unknown section [logs]"),
        (("\n[node]\n", "\n[nodes]\n"), "unknown section [nodes]"),
        (("max_txs = 20000", "max_txs = -1"), "[mempool] max_txs must be positive"),
        (
            ("proof_batch_wait_ms = 40", "proof_batch_wait_ms = 0"),
            "[mempool] proof_batch_wait_ms must be positive",
        ),
        (
            ("proof_batch_max = 64", "proof_batch_max = 0"),
            "[mempool] proof_batch_max must be positive",
        ),
    ],
)
def test_a_bad_value_is_refused_with_its_reason(change: tuple[str, str], problem: str) -> None:
    old, new = change
    text = _written()
    assert old in text
    with pytest.raises(SettingsError) as error:
        parse_node_settings(text.replace(old, new, 1), BASE)
    assert problem in str(error.value)


def test_the_written_header_documents_every_option() -> None:
    header = _written().split("\n\n", 1)[0]
    written = parse_node_settings(_written(), BASE)
    for section in ("node", "api", "peer", "mempool", "log"):
        for option in fields(getattr(written, section)):
            assert option.name in header, (section, option.name)


def test_missing_node_section_and_bad_toml_are_refused() -> None:
    with pytest.raises(SettingsError, match=r"missing section \[node\]"):
        parse_node_settings("[api]\nport = 1\n", BASE)
    with pytest.raises(SettingsError, match="not valid TOML"):
        parse_node_settings("[node\n", BASE)
    with pytest.raises(SettingsError, match="missing"):
        parse_node_settings('[node]\ngenesis = "g"\n', BASE)


def test_state_history_heights_sets_how_far_back_the_node_store_answers(tmp_path: Path) -> None:
    """The option reaches the store: with 3 heights kept, 10 blocks leave the floor at 6."""
    text = _written().replace("state_history_heights = 1024", "state_history_heights = 3")
    settings = parse_node_settings(text, tmp_path)
    store = open_chain_store(settings)
    try:
        commit_random_blocks(store, 10, seed=5)
        assert store.history_floor() == 6
        assert store.state_at(5) is None
    finally:
        store.close()


def test_state_history_heights_may_be_zero_but_not_negative() -> None:
    text = _written()
    zero = parse_node_settings(
        text.replace("state_history_heights = 1024", "state_history_heights = 0"), BASE
    )
    assert zero.node.state_history_heights == 0
    with pytest.raises(SettingsError, match=r"\[node\] state_history_heights must be 0 or more"):
        parse_node_settings(
            text.replace("state_history_heights = 1024", "state_history_heights = -1"), BASE
        )


def test_the_api_factory_and_the_node_share_the_body_limit_default() -> None:
    """They had drifted apart (8 MiB in the app factory, 1 MiB in node.toml's)."""
    from node.api.context import DEFAULT_MAX_BODY_BYTES
    from node.settings import ApiSection

    assert ApiSection().max_body_bytes == DEFAULT_MAX_BODY_BYTES


def test_store_compression_is_none_or_snappy() -> None:
    text = _written()
    assert parse_node_settings(text, BASE).node.store_compression == "none"
    with pytest.raises(SettingsError, match=r"\[node\] store_compression must be one of"):
        parse_node_settings(
            text.replace('store_compression = "none"', 'store_compression = "zlib"'), BASE
        )


def test_state_tree_cache_nodes_reaches_the_store_and_zero_takes_the_walks_default(
    tmp_path: Path,
) -> None:
    text = _written()
    assert "state_tree_cache_nodes = 0" in text
    default = open_chain_store(parse_node_settings(text, tmp_path / "a"))
    try:
        assert default._tree._cache_nodes == state_root.DEFAULT_CACHE_NODES
    finally:
        default.close()
    raised = text.replace("state_tree_cache_nodes = 0", "state_tree_cache_nodes = 4096")
    store = open_chain_store(parse_node_settings(raised, tmp_path / "b"))
    try:
        assert store._tree._cache_nodes == 4096
        commit_random_blocks(store, 5, seed=3)
        assert len(store._tree._cache) > 0
    finally:
        store.close()
    with pytest.raises(SettingsError, match=r"state_tree_cache_nodes must be 0 or more"):
        parse_node_settings(
            text.replace("state_tree_cache_nodes = 0", "state_tree_cache_nodes = -1"), BASE
        )


def test_compaction_nice_defaults_to_ten_and_out_of_range_is_refused() -> None:
    text = _written()
    assert "compaction_nice = 10" in text
    assert parse_node_settings(text, BASE).node.compaction_nice == 10
    off = text.replace("compaction_nice = 10", "compaction_nice = 0")
    assert parse_node_settings(off, BASE).node.compaction_nice == 0
    for bad, reason in (("-1", "0 or more"), ("20", "0 to 19")):
        with pytest.raises(SettingsError, match=rf"compaction_nice must be {reason}"):
            parse_node_settings(
                text.replace("compaction_nice = 10", f"compaction_nice = {bad}"), BASE
            )
