"""``node.toml``: the operator's settings, read strictly and written documented.

``veil node init`` writes the file (``render_node_toml``): a comment block
that explains every option and its default, then the values. ``veil node
run`` reads it (``load_node_settings``): unknown sections or keys, wrong
types and impossible values are refused with a one-line reason
(``SettingsError``), so a typo never silently falls back to a default.
Relative paths are taken from the file's own directory.

Every option and its default is listed in docs/operations.md too.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from ledger.leveldb_store import COMPRESSIONS, DEFAULT_COMPRESSION
from ledger.state_history import DEFAULT_STATE_HISTORY_HEIGHTS
from node.config import DEFAULT_BATCH_CUT_MS
from node.mempool import PROOF_BATCH_MAX, PROOF_BATCH_WAIT_MS, MempoolLimits
from node.thread_priority import MAX_NICE


class SettingsError(ValueError):
    """node.toml is unreadable or holds a value the node cannot use."""


@dataclass(frozen=True, slots=True)
class NodeSection:
    genesis: str
    key: str
    data_dir: str
    tick_ms: int = 100
    proof_workers: int = 1
    wal_compact_records: int = 4096
    max_inflight_batches: int = 4
    batch_cut_ms: int = DEFAULT_BATCH_CUT_MS
    state_history_heights: int = DEFAULT_STATE_HISTORY_HEIGHTS
    store_compression: str = DEFAULT_COMPRESSION
    state_tree_cache_nodes: int = 0
    compaction_nice: int = 10


DEFAULT_API_PORT = 8700
DEFAULT_PEER_PORT = 9700


@dataclass(frozen=True, slots=True)
class ApiSection:
    host: str = "127.0.0.1"
    port: int = DEFAULT_API_PORT
    max_body_bytes: int = 1 << 20
    tls_cert: str = ""
    tls_key: str = ""
    # node.api.context.DEFAULT_MAX_EVENT_SUBSCRIBERS: each subscriber costs the event
    # loop a send per event (257 a full block), and dashboards and indexers need few.
    max_event_subscribers: int = 64


@dataclass(frozen=True, slots=True)
class PeerSection:
    listen_host: str = "127.0.0.1"
    listen_port: int = DEFAULT_PEER_PORT
    endpoints: list[str] = field(default_factory=list)
    allow_plain: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""


@dataclass(frozen=True, slots=True)
class MempoolSection:
    max_txs: int = 20_000
    max_bytes: int = 64 * 1024 * 1024
    account_txs_per_window: int = 500
    account_window_ms: int = 1_000
    max_backlog_ms: int = 2_000
    min_backlog_txs: int = 1_024
    proof_batch_wait_ms: int = PROOF_BATCH_WAIT_MS
    proof_batch_max: int = PROOF_BATCH_MAX


@dataclass(frozen=True, slots=True)
class LogSection:
    json: bool = False
    level: str = "info"


@dataclass(frozen=True, slots=True)
class NodeSettings:
    node: NodeSection
    api: ApiSection = field(default_factory=ApiSection)
    peer: PeerSection = field(default_factory=PeerSection)
    mempool: MempoolSection = field(default_factory=MempoolSection)
    log: LogSection = field(default_factory=LogSection)
    base_dir: Path = Path(".")

    def path(self, value: str) -> Path:
        """A path option, relative to the directory of node.toml."""
        candidate = Path(value)
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    def mempool_limits(self) -> MempoolLimits:
        m = self.mempool
        return MempoolLimits(
            max_txs=m.max_txs,
            max_bytes=m.max_bytes,
            account_txs_per_window=m.account_txs_per_window,
            account_window_ms=m.account_window_ms,
            max_backlog_ms=m.max_backlog_ms,
            min_backlog_txs=m.min_backlog_txs,
        )


SECTIONS: dict[str, type[Any]] = {
    "node": NodeSection,
    "api": ApiSection,
    "peer": PeerSection,
    "mempool": MempoolSection,
    "log": LogSection,
}
POSITIVE_INTS = {"tick_ms", "proof_workers", "wal_compact_records", "max_body_bytes", "max_txs"}
POSITIVE_INTS |= {"max_bytes", "max_inflight_batches", "max_event_subscribers"}
POSITIVE_INTS |= {"account_txs_per_window", "account_window_ms"}
POSITIVE_INTS |= {"max_backlog_ms", "min_backlog_txs", "proof_batch_wait_ms", "proof_batch_max"}
NON_NEGATIVE_INTS = {"state_history_heights", "state_tree_cache_nodes", "compaction_nice"}
NON_NEGATIVE_INTS |= {"batch_cut_ms"}
LOG_LEVELS = {"debug", "info", "warning", "error"}
ANNOTATION_TYPES: dict[str, type[Any]] = {"str": str, "int": int, "bool": bool, "list[str]": list}


def _section(name: str, cls: type[Any], table: object) -> Any:
    if not isinstance(table, dict):
        raise SettingsError(f"[{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise SettingsError(f"[{name}] has unknown option {unknown[0]!r}")
    for key, value in table.items():
        kind = ANNOTATION_TYPES[str(known[key].type)]
        if type(value) is not kind:
            raise SettingsError(f"[{name}] {key} must be a {kind.__name__}, got {value!r}")
        if key in POSITIVE_INTS and value < 1:
            raise SettingsError(f"[{name}] {key} must be positive, got {value}")
        if key in NON_NEGATIVE_INTS and value < 0:
            raise SettingsError(f"[{name}] {key} must be 0 or more, got {value}")
        if key.endswith("port") and not 0 <= value <= 65_535:
            raise SettingsError(f"[{name}] {key} {value} is not a port")
        if key == "endpoints" and not all(isinstance(e, str) for e in value):
            raise SettingsError(f"[{name}] endpoints must be strings host:port")
    try:
        return cls(**table)
    except TypeError as exc:
        raise SettingsError(f"[{name}] {exc}") from None


def parse_node_settings(text: str, base_dir: Path) -> NodeSettings:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"not valid TOML: {exc}") from None
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise SettingsError(f"unknown section [{unknown[0]}]")
    if "node" not in document:
        raise SettingsError("missing section [node] (genesis, key, data_dir)")
    parts = {name: _section(name, cls, document.get(name, {})) for name, cls in SECTIONS.items()}
    settings = NodeSettings(base_dir=base_dir, **parts)
    if settings.node.store_compression not in COMPRESSIONS:
        raise SettingsError(f"[node] store_compression must be one of {list(COMPRESSIONS)}")
    if settings.node.compaction_nice > MAX_NICE:
        raise SettingsError(f"[node] compaction_nice must be 0 to {MAX_NICE}")
    if settings.log.level not in LOG_LEVELS:
        raise SettingsError(f"[log] level must be one of {sorted(LOG_LEVELS)}")
    if bool(settings.api.tls_cert) != bool(settings.api.tls_key):
        raise SettingsError("[api] tls_cert and tls_key must be set together (or neither)")
    return settings


def load_node_settings(path: Path) -> NodeSettings:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_node_settings(text, path.resolve().parent)


HEADER = """\
# node.toml: settings of one Veil validator (written by `veil node init`).
# Every option, its default and what it does is in docs/operations.md.
# Relative paths are taken from this file's directory.
#
# [node]    genesis: the chain's genesis.json; key: this validator's key file
#           (0600, never generated by the node); data_dir: chain store and WAL;
#           tick_ms (100): consensus clock tick; proof_workers (1): processes
#           verifying range proofs; wal_compact_records (4096): rewrite the
#           WAL as its live records after it grew this many;
#           max_inflight_batches (4): as primary, batches proposed and not
#           yet executed at most; batch_cut_ms (100): as primary, propose
#           a batch short of a full block only once its oldest tx waited
#           this long, so a block's fixed cost is shared by more txs (0: at
#           once);
#           state_history_heights (1024): how many
#           past heights the API can still answer for (loans at ?height=);
#           store_compression ("none"): "snappy" compresses the chain store
#           and WAL tables (about 29 % less disk, twice the compaction CPU);
#           state_tree_cache_nodes (0): state tree nodes kept in memory, about
#           4 a state key (0: 1048576 with the C walk, ~120 MB);
#           compaction_nice (10): nice value of LevelDB's compaction thread,
#           so a busy host runs consensus and execution first (0: unchanged).
# [api]     host ("127.0.0.1"), port (8700): the HTTP API; only loopback
#           unless you change host. max_body_bytes (1048576).
#           tls_cert/tls_key (""): PEM certificate and key to serve HTTPS
#           (TLS 1.2 or later) instead of plain HTTP; both or neither.
#           max_event_subscribers (64): open /v1/events WebSockets at most
#           (then 503); each costs the node a send per event.
# [peer]    listen_host ("127.0.0.1"), listen_port (9700): validator links;
#           endpoints: "host:port" of every validator in genesis order (empty:
#           taken from the genesis); tls_cert/tls_key/tls_ca: PEM files of the
#           peer TLS; allow_plain (false): unencrypted links, logged as such.
# [mempool] max_txs (20000), max_bytes (67108864): capacity (then 503 with
#           Retry-After); account_txs_per_window (500) per account_window_ms
#           (1000): per-account rate of clients' txs, a token bucket of that
#           many (then 429). max_backlog_ms (2000),
#           min_backlog_txs (1024): a client's tx is refused (503) once the
#           pending txs would take longer than max_backlog_ms to commit at the
#           network's recent rate, or this many if more.
#           proof_batch_wait_ms (40), proof_batch_max (64): range proofs of
#           admitted txs are verified together, one batch per this many ms or
#           this many txs (bigger batches cost less CPU per proof).
# [log]     json (false): JSON lines instead of key=value; level ("info").
"""


def render_node_toml(settings: NodeSettings) -> str:
    document: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        section = getattr(settings, name)
        document[name] = {f.name: getattr(section, f.name) for f in fields(section)}
    return HEADER + "\n" + tomli_w.dumps(document)
