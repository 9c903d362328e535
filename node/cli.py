"""``veil node init`` and ``veil node run`` (click). ``python -m node`` runs the same group.

``client/cli.py`` (the ``veil`` command) may not import ``node`` (the
dependency rule), so it adds command groups registered under the
``veil.commands`` entry-point group; pyproject registers this one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from node.byzantine import KNOWN_KINDS, TEST_ENV_VAR, ByzantineRefusedError, byzantine_kinds
from node.main import EXIT_STARTUP_FAILED, ByzantineOptions, StartupError, load_identity, main
from node.peer_config import PeerTlsFiles
from node.settings import (
    DEFAULT_API_PORT,
    DEFAULT_PEER_PORT,
    ApiSection,
    NodeSection,
    NodeSettings,
    PeerSection,
    render_node_toml,
)
from node.tls import TlsFileError, server_context


@click.group("node")
def node() -> None:
    """Run a validator node."""


@node.command("init")
@click.option("--genesis", "genesis", required=True, type=click.Path(dir_okay=False))
@click.option("--key", "key", required=True, type=click.Path(dir_okay=False))
@click.option("--data", "data", required=True, type=click.Path(file_okay=False))
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="where to write node.toml (default: DATA/node.toml)",
)
@click.option("--api-port", type=int, default=DEFAULT_API_PORT, show_default=True)
@click.option("--peer-port", type=int, default=DEFAULT_PEER_PORT, show_default=True)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False),
    default=None,
    help="this node's peer TLS certificate (PEM, signed by the consortium CA)",
)
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None, help="its key (PEM)")
@click.option(
    "--tls-ca", type=click.Path(dir_okay=False), default=None, help="the consortium CA (PEM)"
)
@click.option(
    "--allow-plain",
    is_flag=True,
    default=False,
    help="unencrypted peer links instead of TLS (readable on the network)",
)
def init(  # noqa: PLR0917 - one parameter per click option
    genesis: str,
    key: str,
    data: str,
    config: str | None,
    api_port: int,
    peer_port: int,
    tls_cert: str | None,
    tls_key: str | None,
    tls_ca: str | None,
    allow_plain: bool,
) -> None:
    """Check the genesis, key and peer TLS files and write a documented node.toml.

    Peer links need TLS files (``--tls-cert``, ``--tls-key``, ``--tls-ca``) or an
    explicit ``--allow-plain``; the node never makes a key or a certificate.
    """
    tls = _peer_tls_files(tls_cert, tls_key, tls_ca, allow_plain=allow_plain)
    data_dir = Path(data).resolve()
    settings = NodeSettings(
        node=NodeSection(
            genesis=str(Path(genesis).resolve()),
            key=str(Path(key).resolve()),
            data_dir=str(data_dir),
        ),
        api=ApiSection(port=api_port),
        peer=PeerSection(
            listen_port=peer_port,
            allow_plain=allow_plain,
            tls_cert=str(tls.cert_file) if tls else "",
            tls_key=str(tls.key_file) if tls else "",
            tls_ca=str(tls.ca_file) if tls else "",
        ),
    )
    try:
        load_identity(settings)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    target = Path(config) if config is not None else data_dir / "node.toml"
    if target.exists():
        raise click.ClickException(f"{target} exists; refusing to overwrite it")
    data_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(render_node_toml(settings), encoding="utf-8")
    click.echo(str(target))


def _peer_tls_files(
    cert: str | None, key: str | None, ca: str | None, *, allow_plain: bool
) -> PeerTlsFiles | None:
    """The three TLS files, checked to load together, or ``None`` with ``--allow-plain``.

    Why refuse here: a node.toml that ``run`` would refuse is no use, and plain
    links must be an explicit choice, never what an omitted option falls back to.
    """
    given = {"--tls-cert": cert, "--tls-key": key, "--tls-ca": ca}
    if allow_plain:
        if any(given.values()):
            raise click.ClickException("give either --tls-cert/--tls-key/--tls-ca or --allow-plain")
        return None
    if not any(given.values()):
        raise click.ClickException(
            "peer links need TLS: give --tls-cert, --tls-key and --tls-ca (PEM files, see "
            '"TLS files" in docs/operations.md), or --allow-plain for unencrypted links'
        )
    if not (cert and key and ca):
        missing = ", ".join(option for option, value in given.items() if not value)
        raise click.ClickException(f"{missing} missing: the TLS options go together")
    files = PeerTlsFiles(Path(cert).resolve(), Path(key).resolve(), Path(ca).resolve())
    try:
        server_context(files)
    except TlsFileError as exc:
        raise click.ClickException(str(exc)) from None
    return files


@node.command("run")
@click.option("--config", "config", required=True, type=click.Path(dir_okay=False))
@click.option(
    "--byzantine",
    default=None,
    metavar="KINDS",
    help=(
        f"TEST ONLY, needs {TEST_ENV_VAR}=1: attack the others ('all' or {','.join(KNOWN_KINDS)})."
    ),
)
@click.option("--censor-signer", default="", metavar="HEX", help="with --byzantine censor")
@click.option("--byzantine-seed", default=0, type=int)
def run(config: str, byzantine: str | None, censor_signer: str, byzantine_seed: int) -> None:
    """Run the validator described by node.toml until SIGTERM."""
    options = None
    if byzantine is not None:
        try:
            kinds = byzantine_kinds(byzantine)
            victim = bytes.fromhex(censor_signer)
        except (ByzantineRefusedError, ValueError) as exc:
            click.echo(f"veil node: {exc}")
            sys.exit(EXIT_STARTUP_FAILED)
        options = ByzantineOptions(kinds, victim, byzantine_seed)
    sys.exit(main(Path(config), options))
