"""``python -m privacy``: see ``privacy.cli``."""

from privacy.cli import main

if __name__ == "__main__":
    main()
