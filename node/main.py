"""``veil node run``: wiring only. Everything it builds is decided elsewhere.

Start-up fails fast, with one line saying why and exit status 2, when the
genesis is unreadable, the key file is missing, unreadable or not a
validator of that genesis (a key is never generated here), a TLS file is
missing, unreadable or does not fit the others, the data directory holds
another chain (``open_chain``), or a port is in use.

Then it runs the runtime, the inbound peer pump and the HTTP API until
SIGTERM or SIGINT: the runtime stops taking events, the API and the peer
links close, the store and the WAL are closed, and the exit status is 0.
If the runtime halted on its own (WAL failure, divergence) the status is 1.
A restart resumes from the WAL and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import signal
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ledger.chain import ChainMismatchError, open_chain
from ledger.genesis import Genesis, GenesisError, load_genesis
from ledger.identity import KeyFileError, SigningIdentity
from ledger.leveldb_store import (
    DEFAULT_WRITE_BUFFER_BYTES,
    LevelDBStore,
    staggered_write_buffer_bytes,
)
from ledger.state_root import NATIVE_WALK
from ledger.store import StoreError
from ledger.stored_block import stored_block_claim
from node.api.app import create_app
from node.api.runner import ApiRunner
from node.byzantine import MUTE_CATCHUP, ByzantineLinks
from node.config import NodeConfigError, replica_config_from_genesis
from node.gc_policy import settle_after_startup
from node.logging import configure_logging, http_server_log
from node.peer_bridge import TransportLinks, pump
from node.peer_config import PeerLinkConfig, PeerTlsFiles
from node.proof_pool import ProofPool
from node.runtime import NodeRuntime, PeerLinks, RuntimeSettings
from node.serial_worker import SerialWorker
from node.settings import NodeSettings, SettingsError, load_node_settings
from node.tls import TlsFileError, api_server_context
from node.transport import PeerTransport
from node.wal import WalError, WriteAheadLog

log = logging.getLogger("veil.node.main")

EXIT_STARTUP_FAILED = 2
EXIT_HALTED = 1


class StartupError(Exception):
    """The node cannot start; the message is the one line the operator sees."""


@dataclass(frozen=True, slots=True)
class Identity:
    genesis: Genesis
    identity: SigningIdentity


def load_identity(settings: NodeSettings) -> Identity:
    """The genesis and this validator's key, both checked (``StartupError`` otherwise)."""
    genesis_path = settings.path(settings.node.genesis)
    try:
        genesis = load_genesis(genesis_path)
    except (OSError, ValueError, GenesisError) as exc:
        raise StartupError(f"cannot read genesis {genesis_path}: {exc}") from None
    key_path = settings.path(settings.node.key)
    try:
        identity = SigningIdentity.load(key_path)
    except KeyFileError as exc:
        raise StartupError(f"cannot use key file: {exc}") from None
    try:
        replica_config_from_genesis(genesis, identity.public_key, tick_ms=settings.node.tick_ms)
    except NodeConfigError as exc:
        raise StartupError(str(exc)) from None
    return Identity(genesis, identity)


def peer_link_config(settings: NodeSettings, genesis: Genesis) -> PeerLinkConfig:
    peer = settings.peer
    endpoints = tuple(peer.endpoints) or tuple(v.peer_endpoint for v in genesis.validators)
    if len(endpoints) != len(genesis.validators):
        raise StartupError(
            f"[peer] endpoints lists {len(endpoints)} validators, the genesis has "
            f"{len(genesis.validators)}"
        )
    tls = None
    named = [bool(path) for path in (peer.tls_cert, peer.tls_key, peer.tls_ca)]
    if any(named) and not all(named):
        # An empty path would resolve to node.toml's directory and fail obscurely.
        raise StartupError("[peer] tls_cert, tls_key and tls_ca must be set together")
    if all(named):
        tls = PeerTlsFiles(
            settings.path(peer.tls_cert), settings.path(peer.tls_key), settings.path(peer.tls_ca)
        )
    try:
        return PeerLinkConfig(
            listen_host=peer.listen_host,
            listen_port=peer.listen_port,
            peer_endpoints=endpoints,
            tls=tls,
            allow_plain=peer.allow_plain,
        )
    except ValueError as exc:
        raise StartupError(f"[peer] {exc}") from None


def api_ssl_context(settings: NodeSettings) -> ssl.SSLContext | None:
    """HTTPS for the API when ``[api] tls_cert`` and ``tls_key`` are set, else plain HTTP."""
    api = settings.api
    if not api.tls_cert:
        return None
    try:
        return api_server_context(settings.path(api.tls_cert), settings.path(api.tls_key))
    except TlsFileError as exc:
        raise StartupError(str(exc)) from None


async def start_api(
    app: web.Application, settings: NodeSettings, ssl_context: ssl.SSLContext | None
) -> web.AppRunner:
    """Serve ``app`` on ``[api] host:port`` (HTTPS with ``ssl_context``); the runner to clean up."""
    runner = ApiRunner(
        app, handle_signals=False, access_log=None, logger=http_server_log("veil.node.api.http")
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.api.host, settings.api.port, ssl_context=ssl_context)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(
            f"cannot serve the API on {settings.api.host}:{settings.api.port}: "
            f"{exc.strerror or exc}"
        ) from None
    return runner


def link_faults_by_kind(transport: PeerTransport) -> dict[str, int]:
    """The transport's fault counts summed over peers (labels stay a bounded set)."""
    totals: dict[str, int] = {}
    for (_, kind), count in transport.fault_counts().items():
        totals[kind.value] = totals.get(kind.value, 0) + count
    return totals


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ByzantineOptions:
    """``--byzantine`` (test only, see ``node.byzantine``): what to lie about, whom to censor
    (a signer's public key; empty: the next validator's)."""

    kinds: frozenset[str]
    censored_signer: bytes = b""
    seed: int = 0


def _outgoing_links(
    links: TransportLinks, byzantine: ByzantineOptions | None, loaded: Identity, tick_ms: int
) -> PeerLinks:
    if byzantine is None:
        return links
    config = replica_config_from_genesis(
        loaded.genesis, loaded.identity.public_key, tick_ms=tick_ms
    )
    validators = loaded.genesis.validators
    victim = byzantine.censored_signer or (
        validators[(config.replica_id + 1) % len(validators)].public_key
    )
    log.warning("BYZANTINE TEST NODE: %s; censoring %s", sorted(byzantine.kinds), victim.hex())
    return ByzantineLinks(
        inner=links,
        kinds=byzantine.kinds,
        config=config,
        sign=loaded.identity.sign_self_tagged,
        censored_signer=victim,
        rng=random.Random(byzantine.seed),
        injected=Counter(),
    )


def open_chain_store(
    settings: NodeSettings, *, replica: int = 0, replicas: int = 1
) -> LevelDBStore:
    """The chain store under ``data_dir``, keeping ``state_history_heights`` of history,
    with the write buffer of validator ``replica`` of ``replicas`` (each its own, so
    the validators flush at different heights)."""
    data_dir = settings.path(settings.node.data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        return LevelDBStore(
            data_dir / "chain",
            block_claims=stored_block_claim,
            history_heights=settings.node.state_history_heights,
            compression=settings.node.store_compression,
            cache_nodes=settings.node.state_tree_cache_nodes or None,
            write_buffer_bytes=staggered_write_buffer_bytes(
                DEFAULT_WRITE_BUFFER_BYTES, replica, replicas
            ),
        )
    except (OSError, StoreError) as exc:
        raise StartupError(f"cannot open the chain store in {data_dir}: {exc}") from None


async def run_node(settings: NodeSettings, byzantine: ByzantineOptions | None = None) -> int:
    """Start, serve until a signal, drain; the exit status."""
    configure_logging(json_lines=settings.log.json, level=settings.log.level.upper())
    loaded = load_identity(settings)
    genesis, identity = loaded.genesis, loaded.identity
    links_config = peer_link_config(settings, genesis)
    api_ssl = api_ssl_context(settings)
    data_dir = settings.path(settings.node.data_dir)
    validators = tuple(v.public_key for v in genesis.validators)
    store = open_chain_store(
        settings, replica=validators.index(identity.public_key), replicas=len(validators)
    )
    with contextlib.ExitStack() as closing:
        closing.callback(store.close)
        try:
            open_chain(store, genesis)
        except ChainMismatchError as exc:
            raise StartupError(str(exc)) from None
        try:
            wal = WriteAheadLog(data_dir / "wal", compression=settings.node.store_compression)
        except WalError as exc:
            raise StartupError(str(exc)) from None
        closing.callback(wal.close)
        transport = PeerTransport(links_config, identity, genesis.chain_id, validators)
        try:
            await transport.start()
        except TlsFileError as exc:
            await transport.stop()
            raise StartupError(str(exc)) from None
        except OSError as exc:
            await transport.stop()
            raise StartupError(
                f"cannot listen for peers on {links_config.listen_host}:"
                f"{links_config.listen_port}: {exc.strerror or exc}"
            ) from None
        pool = ProofPool(settings.node.proof_workers)
        closing.callback(pool.close)
        worker = SerialWorker()
        closing.callback(worker.close)
        reader = SerialWorker("veil-reader")
        closing.callback(reader.close)  # before the store: it reads the store's snapshots
        links = TransportLinks(transport)
        outgoing = _outgoing_links(links, byzantine, loaded, settings.node.tick_ms)
        runtime = NodeRuntime(
            genesis=genesis,
            identity=identity,
            store=store,
            wal=wal,
            links=outgoing,
            proof_verifier=pool.verify,
            wall_clock_ms=wall_clock_ms,
            settings=RuntimeSettings(
                tick_ms=settings.node.tick_ms,
                mempool=settings.mempool_limits(),
                wal_compact_records=settings.node.wal_compact_records,
                max_inflight_batches=settings.node.max_inflight_batches,
                batch_cut_ms=settings.node.batch_cut_ms,
                compaction_nice=settings.node.compaction_nice,
                proof_batch_wait_ms=settings.mempool.proof_batch_wait_ms,
                proof_batch_max=settings.mempool.proof_batch_max,
            ),
            worker=worker,
            reader=reader,
        )
        runtime.metrics.export_peer_link_faults(functools.partial(link_faults_by_kind, transport))
        runtime.metrics.export_proof_pool_restarts(lambda: pool.restarts)
        runtime.metrics.export_store_levels(
            {"chain": store.backend.level_stats, "wal": wal.level_stats}
        )
        try:
            app = create_app(
                runtime,
                max_body_bytes=settings.api.max_body_bytes,
                max_event_subscribers=settings.api.max_event_subscribers,
            )
            api = await start_api(app, settings, api_ssl)
        except StartupError:
            await transport.stop()
            raise
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runtime.stop, f"signal {signal.Signals(signum).name}")
        settle_after_startup()
        log.info(
            "validator %d of chain %s at height %d; API on %s://%s:%d; range proofs verified "
            "with the %s multiscalar backend; the state tree walked in %s; the chain "
            "store's write buffer %.1f MiB",
            runtime.config.replica_id,
            genesis.chain_id.hex(),
            store.height(),
            "http" if api_ssl is None else "https",
            settings.api.host,
            settings.api.port,
            runtime.settings.msm_backend,
            "C" if NATIVE_WALK else "Python",
            store.backend.write_buffer_bytes / (1 << 20),
        )
        try:
            async with asyncio.TaskGroup() as group:
                serve_blocks = byzantine is None or MUTE_CATCHUP not in byzantine.kinds
                pump_task = group.create_task(
                    pump(transport, links, runtime, serve_blocks=serve_blocks)
                )
                await runtime.run()
                pump_task.cancel()
        finally:
            await api.cleanup()
            await transport.stop()
            if isinstance(outgoing, ByzantineLinks):
                outgoing.report()
        reason = runtime.stop_reason or ""
        return 0 if reason.startswith("signal ") else EXIT_HALTED


def main(config_path: Path, byzantine: ByzantineOptions | None = None) -> int:
    """Load node.toml and run; the process exit status."""
    try:
        settings = load_node_settings(config_path)
        return asyncio.run(run_node(settings, byzantine))
    except (SettingsError, StartupError) as exc:
        print(f"veil node: {exc}", flush=True)
        return EXIT_STARTUP_FAILED
