"""``NodeMetrics``: every Prometheus metric a node exports, in a registry of its own.

Why one ``CollectorRegistry`` per node and never the global one: a test or a
devnet may run several nodes in one process, and the global registry refuses
a second metric of the same name. ``/metrics`` renders ``render()``.

Label values are bounded sets only (``ledger.reasons.Reason`` codes, the API's
``BUSY_*`` codes, consensus fault kinds, a backend name): never a key, a tx id
or an amount, so a hostile client cannot grow the registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from ledger.leveldb_stats import LevelStats, LevelStatsError
from node.thread_cpu import ThreadCpu

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of ``render()``'s text exposition format."""

COMMIT_LATENCY_BUCKETS_S: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
)
BATCH_SIZE_BUCKETS_TXS: Final = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
PROOF_VERIFY_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
WAL_SYNC_BUCKETS_S: Final = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class NodeMetrics:
    """The node's metrics. The runtime sets and observes them; the API renders them."""

    def __init__(self, *, namespace: str = "veil") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        # python_gc_*: collections by generation, so an operator sees node.gc_policy work.
        GCCollector(registry=registry)

        def gauge(name: str, documentation: str) -> Gauge:
            return Gauge(name, documentation, namespace=namespace, registry=registry)

        def counter(name: str, documentation: str, *labels: str) -> Counter:
            return Counter(name, documentation, labels, namespace=namespace, registry=registry)

        def histogram(name: str, documentation: str, buckets: Sequence[float]) -> Histogram:
            return Histogram(
                name, documentation, namespace=namespace, registry=registry, buckets=buckets
            )

        self.height = gauge("height", "Height of the last committed block.")
        self.view = gauge("view", "The PBFT view this replica is in.")
        self.view_changes = counter("view_changes", "View changes this replica completed.")
        self.commit_latency_seconds = histogram(
            "commit_latency_seconds",
            "From a tx's admission to the commit of its block, on this node.",
            COMMIT_LATENCY_BUCKETS_S,
        )
        self.batch_size_txs = histogram(
            "batch_size_txs", "Requests per committed batch.", BATCH_SIZE_BUCKETS_TXS
        )
        self.mempool_txs = gauge("mempool_txs", "Txs admitted and not yet committed.")
        self.mempool_bytes = gauge("mempool_bytes", "Encoded bytes of the mempool's txs.")
        self.peers_connected = gauge(
            "peers_connected", "Other validators with an authenticated link."
        )
        self.txs_admitted = counter("txs_admitted", "Txs the mempool admitted.")
        self.txs_rejected = counter(
            "txs_rejected",
            "Txs refused at admission or execution, by stable reason code.",
            "reason",
        )
        self.signature_batch_size = histogram(
            "signature_batch_size",
            "Signatures checked as one batch, from a gossip chunk or a client batch"
            " (docs/privacy.md, signatures in batches).",
            BATCH_SIZE_BUCKETS_TXS,
        )
        self.proof_verification_seconds = histogram(
            "proof_verification_seconds",
            "Wall time of one batch range-proof verification.",
            PROOF_VERIFY_BUCKETS_S,
        )
        self.faults = counter("faults", "Peer faults counted and survived, by kind.", "kind")
        self.wal_sync_seconds = histogram(
            "wal_sync_seconds", "Wall time of one synced WAL write batch.", WAL_SYNC_BUCKETS_S
        )
        self.wal_records = gauge(
            "wal_records",
            "Records in the consensus write-ahead log (compaction keeps it bounded).",
        )
        self.wal_compactions = counter(
            "wal_compactions", "Times the write-ahead log was rewritten as its live records."
        )
        registry.register(_ThreadCpuCollector(ThreadCpu()))
        self.msm = Info(
            "msm",
            "The multiscalar-multiplication backend range proofs use.",
            namespace=namespace,
            registry=registry,
        )

    def export_peer_link_faults(self, read: Callable[[], Mapping[str, int]]) -> None:
        """``veil_peer_link_faults_total{kind}``: the peer transport's faults by kind
        (a refused non-member or wrong chain, a bad frame, a failed TLS handshake),
        read from ``read`` at each scrape, so none is missed or counted twice."""
        self.registry.register(
            _ReadLabeledCounter(
                "veil_peer_link_faults",
                "Peer connections closed for a fault, by kind (counted by the transport).",
                "kind",
                read,
            )
        )

    def export_mempool_rebuilds(self, read: Callable[[], Mapping[str, int]]) -> None:
        """``veil_mempool_rebuilds_total{how}``: the mempool's rebuilds after a block,
        ``in_place`` or ``in_full`` (``node.mempool``), read at each scrape."""
        self.registry.register(
            _ReadLabeledCounter(
                "veil_mempool_rebuilds",
                "The mempool's rebuilds after a block: in place (only the block's keys"
                " looked at) or in full (every pending tx walked).",
                "how",
                read,
            )
        )

    def export_proof_pool_restarts(self, read: Callable[[], int]) -> None:
        """``veil_proof_pool_restarts_total``: new proof pools started because a
        worker died (``node.proof_pool``), read from ``read`` at each scrape."""
        self.registry.register(_ReadCounter("veil_proof_pool_restarts", _RESTARTS_HELP, read))

    def export_store_levels(self, stores: Mapping[str, Callable[[], Sequence[LevelStats]]]) -> None:
        """``veil_store_level_*`` and ``veil_store_compaction_*``: each LevelDB
        database's levels and what its compactions cost (``ledger.leveldb_stats``),
        by ``store`` (the names of ``stores``) and ``level``, read at each scrape."""
        self.registry.register(_StoreLevelsCollector(stores))

    def set_msm_backend(self, backend: str) -> None:
        self.msm.info({"backend": backend})

    def render(self) -> bytes:
        """The registry in Prometheus's text exposition format."""
        return generate_latest(self.registry)


class _ReadLabeledCounter(Collector):
    """A counter by one label, kept by another object and read at each scrape."""

    def __init__(
        self, name: str, documentation: str, label: str, read: Callable[[], Mapping[str, int]]
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._label = label
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._documentation, labels=[self._label])
        for value, count in sorted(self._read().items()):
            family.add_metric([value], count)
        yield family


_RESTARTS_HELP = "New proof pools started because a proof worker process died."


class _ReadCounter(Collector):
    """A counter kept by another object, read at each scrape."""

    def __init__(self, name: str, documentation: str, read: Callable[[], int]) -> None:
        self._name = name
        self._documentation = documentation
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._read())


_StoreFamily = tuple[type[GaugeMetricFamily | CounterMetricFamily], str, str, str]
"""(metric type, name, help, ``LevelStats`` field) of one exported family."""
_STORE_FAMILIES: Final[tuple[_StoreFamily, ...]] = (
    (GaugeMetricFamily, "veil_store_level_files", "Table files in a LevelDB level.", "files"),
    (
        GaugeMetricFamily,
        "veil_store_level_bytes",
        "Bytes in a LevelDB level's tables (LevelDB rounds them to whole MiB).",
        "size_bytes",
    ),
    (
        CounterMetricFamily,
        "veil_store_compaction_seconds",
        "Wall seconds of the compactions (memtable flushes for level 0) that wrote"
        " into a level (whole seconds).",
        "compaction_seconds",
    ),
    (
        CounterMetricFamily,
        "veil_store_compaction_read_bytes",
        "Bytes compactions read to write into a level (whole MiB).",
        "compaction_read_bytes",
    ),
    (
        CounterMetricFamily,
        "veil_store_compaction_written_bytes",
        "Bytes compactions and memtable flushes wrote into a level (whole MiB); for the"
        " chain store, all levels over level 0 is the write amplification.",
        "compaction_written_bytes",
    ),
)


class _StoreLevelsCollector(Collector):
    """LevelDB's own level table for each named database, read at each scrape."""

    def __init__(self, stores: Mapping[str, Callable[[], Sequence[LevelStats]]]) -> None:
        self._stores = dict(stores)
        self._unreadable: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        levels: dict[str, Sequence[LevelStats]] = {}
        for store, read in self._stores.items():
            try:
                levels[store] = read()
            except LevelStatsError as exc:
                # Another LevelDB's table: the scrape goes on without it, said once.
                if store not in self._unreadable:
                    self._unreadable.add(store)
                    log.warning("the %s store's LevelDB stats are unreadable: %s", store, exc)
        for family_type, name, documentation, field in _STORE_FAMILIES:
            family = family_type(name, documentation, labels=["store", "level"])
            for store, stats in levels.items():
                for level in stats:
                    family.add_metric([store, str(level.level)], getattr(level, field))
            yield family


class _ThreadCpuCollector(Collector):
    def __init__(self, threads: ThreadCpu) -> None:
        self._threads = threads

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "veil_thread_cpu_seconds",
            "CPU seconds by thread: MainThread (the event loop), veil-worker (execution "
            "and synced writes), veil-reader (served blocks), native (LevelDB's compaction).",
            labels=["thread"],
        )
        for label, seconds in sorted(self._threads.read().items()):
            family.add_metric([label], seconds)
        yield family
