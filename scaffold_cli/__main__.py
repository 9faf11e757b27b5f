"""``python -m scaffold_cli`` and the ``stream-scaffold`` console script."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    main()
