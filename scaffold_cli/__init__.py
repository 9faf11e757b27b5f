"""flask-stream-scaffold: generate Flask projects whose streaming endpoints are done right.

The public surface is the ``stream-scaffold`` command (``python -m scaffold_cli``); the
modules starting with an underscore are private.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("flask-stream-scaffold")
except PackageNotFoundError:  # pragma: no cover - running from an unpacked tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
