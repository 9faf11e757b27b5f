"""Running Copier quietly and turning its failures into one-line `ScaffoldError` messages.

Copier is imported here, lazily, so that commands which never render (``--help``,
``--version``, ``list``) do not pay for importing it.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from ._answers import ANSWERS_FILE
from ._errors import ScaffoldError


class AnswerError(ScaffoldError):
    """An answer that a question of ``copier.yml`` refused, with the validator's message."""

    def __init__(self, question: str, message: str) -> None:
        # The refused value is quoted in the message: show its line breaks, keep one line.
        printable = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        super().__init__(printable)
        self.question = question


# How Copier words a refused answer (copier/_user_data.py): a validator's message, a value
# that is not one of the choices, a required question left without an answer.
_ANSWER_ERRORS = (
    re.compile(r"^Validation error for question '(?P<question>\w+)': (?P<message>.*)\Z", re.S),
    re.compile(r"^Invalid choice for '(?P<question>\w+)': (?P<message>.*)\Z", re.S),
    re.compile(r'^Question "(?P<question>\w+)" is (?P<message>required)\Z'),
)


def _answer_error(error: ValueError) -> AnswerError | None:
    """The `AnswerError` a Copier ``ValueError`` stands for, or None for any other one."""
    for pattern in _ANSWER_ERRORS:
        match = pattern.match(str(error))
        if match:
            message = match["message"].strip()
            if pattern is not _ANSWER_ERRORS[0]:
                message = f"{match['question']}: {message}"
            return AnswerError(match["question"], message)
    return None


def _raised_by_copier(error: BaseException) -> bool:
    """Whether ``error`` was raised in Copier's own code (not in code it called)."""
    import copier  # noqa: PLC0415

    package = Path(copier.__file__).parent
    traceback = error.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return Path(traceback.tb_frame.f_code.co_filename).is_relative_to(package)


@contextlib.contextmanager
def _quiet(warn: Callable[[str], None], what: str) -> Iterator[None]:
    """Silence Copier's own printing, pass its warnings on, and translate its user errors.

    Only what Copier raises for a user's mistake becomes a `ScaffoldError`: its own errors, an
    answer a validator refused, a broken template, a failing git command, a destination the
    user may not write. Anything else is a bug and surfaces with its traceback.
    """
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
        except (CopierError, TemplateError, PermissionError) as error:
            raise ScaffoldError(f"{what} failed: {_first_line(error)}") from None
        except ValueError as error:
            refused = _answer_error(error)
            if refused is not None:
                raise refused from None
            if not _raised_by_copier(error):
                raise
            # Copier's own checks of what it is given, such as an unknown template version.
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
    answers_only: bool = False,
) -> None:
    """Render ``src_path`` at ``vcs_ref`` into ``dst_path``, asking nothing.

    ``unsafe`` lets the template run its tasks; without it Copier refuses a template that has
    any, and `ScaffoldError` says how to opt in. ``answers_only`` renders the answers file
    alone and runs no task: the questions are asked and checked, nothing else happens.
    """
    import copier  # noqa: PLC0415

    only: dict[str, Any] = {}
    if answers_only:
        only = {"exclude": ["*", f"!{ANSWERS_FILE}"], "skip_tasks": True}
    with _quiet(warn, "checking the answers" if answers_only else "rendering the template"):
        copier.run_copy(
            src_path,
            dst_path,
            data=dict(data),
            vcs_ref=vcs_ref,
            defaults=True,
            overwrite=True,
            quiet=True,
            unsafe=unsafe,
            **only,
        )


def recorded_answers(
    src_path: str,
    dst_path: Path,
    data: Mapping[str, Any],
    vcs_ref: str | None,
    warn: Callable[[str], None],
    *,
    unsafe: bool,
) -> dict[str, Any]:
    """Ask the template's questions with ``data`` as `copy` would, and return the answers
    Copier records (defaults filled in). Only the answers file is written, into ``dst_path``.

    Raises `AnswerError` for the first answer a question refuses.
    """
    import yaml  # noqa: PLC0415

    copy(src_path, dst_path, data, vcs_ref, warn, unsafe=unsafe, answers_only=True)
    recorded = yaml.safe_load((dst_path / ANSWERS_FILE).read_text(encoding="utf-8"))
    return {key: value for key, value in recorded.items() if not key.startswith("_")}


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
