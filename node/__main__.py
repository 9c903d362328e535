"""``python -m node init|run``: the same commands as ``veil node``."""

from node.cli import node

node()
