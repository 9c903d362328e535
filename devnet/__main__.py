"""Entry point for ``python -m devnet`` (``make devnet`` runs ``up``)."""

from devnet.cli import devnet_cli

if __name__ == "__main__":
    devnet_cli()
