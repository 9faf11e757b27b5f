"""Running Copier quietly and turning its failures into one-line `ScaffoldError` messages.

Copier is imported here, lazily, so that commands which never render (``--help``,
``--version``, ``list``) do not pay for importing it.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from ._errors import ScaffoldError


@contextlib.contextmanager
def _quiet(warn: Callable[[str], None], what: str) -> Iterator[None]:
    """Silence Copier's own printing, pass its warnings on, and translate its errors."""
    from copier.errors import CopierError, UnsafeTemplateError  # noqa: PLC0415
    from jinja2 import TemplateError  # noqa: PLC0415
    from plumbum.commands.processes import ProcessExecutionError  # noqa: PLC0415

    captured = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
                yield
        except UnsafeTemplateError as error:
            features = _first_line(error).partition(": ")[2].rstrip(".")
            raise ScaffoldError(
                f"{what} refused: the template is not the one that ships with stream-scaffold "
                f"and would run its own code ({features}); pass --trust if you trust it"
            ) from None
        except ProcessExecutionError as error:
            detail = _last_line(str(error.stderr) or str(error.stdout)) or f"exit {error.retcode}"
            raise ScaffoldError(f"{what} failed: {detail}") from None
        except (CopierError, TemplateError, ValueError, TypeError, OSError) as error:
            raise ScaffoldError(f"{what} failed: {_first_line(error)}") from None
    for warning in caught:
        if issubclass(warning.category, DeprecationWarning):
            continue
        warn(_first_line(warning.message))


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("fatal: ").removeprefix("error: ") if lines else ""


def copy(
    src_path: str,
    dst_path: Path,
    data: Mapping[str, Any],
    vcs_ref: str | None,
    warn: Callable[[str], None],
    *,
    unsafe: bool,
) -> None:
    """Render ``src_path`` at ``vcs_ref`` into ``dst_path``, asking nothing.

    ``unsafe`` lets the template run its tasks; without it Copier refuses a template that has
    any, and `ScaffoldError` says how to opt in.
    """
    import copier  # noqa: PLC0415

    with _quiet(warn, "rendering the template"):
        copier.run_copy(
            src_path,
            dst_path,
            data=dict(data),
            vcs_ref=vcs_ref,
            defaults=True,
            overwrite=True,
            quiet=True,
            unsafe=unsafe,
        )


def update(
    project: Path,
    data: Mapping[str, Any],
    vcs_ref: str | None,
    conflict: Literal["inline", "rej"],
    warn: Callable[[str], None],
    *,
    unsafe: bool,
    current: bool = False,
) -> None:
    """Re-render ``project`` with ``data`` merged into its answers, 3-way merging user edits.

    ``current`` keeps the template version the project is on (`VcsRef.CURRENT`); otherwise
    ``vcs_ref`` is the version to move to (``None``: the template's latest tag). ``unsafe``
    lets the template run its tasks and migrations, as in `copy`.
    """
    import copier  # noqa: PLC0415
    from copier import VcsRef  # noqa: PLC0415

    ref: str | VcsRef | None = VcsRef.CURRENT if current else vcs_ref
    with _quiet(warn, "re-rendering the project"):
        copier.run_update(
            project,
            data=dict(data),
            vcs_ref=ref,
            overwrite=True,
            defaults=True,
            quiet=True,
            conflict=conflict,
            unsafe=unsafe,
        )
