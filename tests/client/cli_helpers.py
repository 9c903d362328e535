"""What every ``veil`` CLI test needs: a wallet directory for a world party, and the CLI
run in-process against a served node."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from client.cli import cli
from client.wallet_file import WalletDir
from tests.client.served_node import ServedNode
from tests.spec.ledger_world import Party


def wallet_dir_of(party: Party, path: Path) -> Path:
    """A wallet directory at ``path`` holding ``party``'s keys."""
    WalletDir.create(path, party.identity, party.memo_private)
    return path


def veil(served: ServedNode | str, *args: str | Path) -> Result:
    """``veil --node URL ARGS...`` (``served`` may be a bare URL, for unreachable nodes)."""
    url = served if isinstance(served, str) else served.url
    return CliRunner().invoke(cli, ["--node", url, *map(str, args)], catch_exceptions=False)
