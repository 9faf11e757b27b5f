"""Fixtures shared by the whole suite: the repository root and a rendered-project factory."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ruff, mypy and copier are installed beside the interpreter that runs the suite.
TOOLS = Path(sys.executable).parent


def render(destination: Path, data: Mapping[str, Any]) -> Path:
    """Render the template from this checkout (uncommitted changes included) into *destination*.

    Copier copies a local repository's working tree, dirty or not, so the suite always tests
    the template as it is on disk.
    """
    from copier import run_copy
    from copier.errors import DirtyLocalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DirtyLocalWarning)
        run_copy(
            str(ROOT),
            destination,
            data=dict(data),
            defaults=True,
            unsafe=True,
            quiet=True,
            vcs_ref="HEAD",
        )
    return destination


@pytest.fixture(scope="session")
def tools() -> Path:
    """The directory holding the suite's ruff, mypy and copier executables."""
    return TOOLS
