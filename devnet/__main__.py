"""Entry point for ``python -m devnet``; the network itself is not built yet."""

import sys


def main() -> int:
    print(
        "veil devnet: not built yet. The four-node devnet needs the node process "
        "(node/) and the client SDK (client/), which have not landed. "
        "See the open issues (`issues`) for progress.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
