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
from node.settings import (
    DEFAULT_API_PORT,
    DEFAULT_PEER_PORT,
    ApiSection,
    NodeSection,
    NodeSettings,
    PeerSection,
    render_node_toml,
)


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
def init(  # noqa: PLR0917 - one parameter per click option
    genesis: str, key: str, data: str, config: str | None, api_port: int, peer_port: int
) -> None:
    """Check the genesis and key and write a documented node.toml (never a key)."""
    data_dir = Path(data).resolve()
    settings = NodeSettings(
        node=NodeSection(
            genesis=str(Path(genesis).resolve()),
            key=str(Path(key).resolve()),
            data_dir=str(data_dir),
        ),
        api=ApiSection(port=api_port),
        peer=PeerSection(listen_port=peer_port),
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
