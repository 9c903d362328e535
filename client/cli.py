"""The ``veil`` command line. Later issues add subcommands (wallet, tx, node)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path

import click

from ledger.identity import KeyFileError, SigningIdentity


def _installed_version() -> str:
    try:
        return version("veil")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_installed_version(), "--version", "-V", prog_name="veil")
def cli() -> None:
    """Veil: a permissioned ledger for bank consortia with hidden amounts.

    Amounts live on chain as Pedersen commitments with range proofs; validators
    agree with PBFT. Run `make devnet` for a local four-node network.
    """


@cli.group()
def keys() -> None:
    """Manage ed25519 signing key files."""


@keys.command("new")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def keys_new(path: str) -> None:
    """Create a new key file at PATH (mode 0600; never overwrites)."""
    identity = SigningIdentity.generate()
    try:
        identity.save(Path(path))
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(identity.public_key.hex())


@keys.command("show")
@click.argument("path", type=click.Path(dir_okay=False, exists=True))
def keys_show(path: str) -> None:
    """Print the public key of the key file at PATH (never the secret)."""
    try:
        identity = SigningIdentity.load(Path(path))
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(identity.public_key.hex())


PLUGIN_GROUP = "veil.commands"
"""Entry-point group of command groups other packages add (``veil node`` from node/):
the client may not import them (the dependency rule), the installation wires them."""


def _add_plugin_commands() -> None:
    for entry in entry_points(group=PLUGIN_GROUP):
        command = entry.load()
        if isinstance(command, click.Command) and entry.name not in cli.commands:
            cli.add_command(command, entry.name)


import client.loan_proofs  # noqa: E402, F401 - registers the proof commands on `veil loan`
from client.commands import install_global_options  # noqa: E402 - after cli exists
from client.loan_commands import loan  # noqa: E402

install_global_options(cli)
cli.add_command(loan)


def main() -> None:
    _add_plugin_commands()
    cli()
