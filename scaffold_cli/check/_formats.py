"""Output formats of ``stream-scaffold check``: text (ruff-like), JSON, GitHub annotations."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

from ._findings import Finding, Level

OutputFormat = Literal["text", "json", "github"]
FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)
_GITHUB_LEVELS = {Level.ERROR: "error", Level.WARNING: "warning", Level.INFO: "notice"}


def display_path(path: Path) -> str:
    """*path* relative to the current directory when it is below it, else as it is."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return os.fspath(path)


def _summary(findings: Sequence[Finding]) -> str:
    if not findings:
        return "All checks passed."
    counts = {level: sum(f.rule.level is level for f in findings) for level in Level}
    parts = ", ".join(
        f"{n} {level.value}{'s' if n > 1 and level is not Level.INFO else ''}"
        for level, n in counts.items()
        if n
    )
    noun = "finding" if len(findings) == 1 else "findings"
    return f"Found {len(findings)} {noun} ({parts})."


def _escape_github(text: str, *, property_: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render(findings: Sequence[Finding], output: OutputFormat) -> str:
    """*findings* in the format *output*, one of `FORMATS`, ending with a line break."""
    if output == "json":
        records = [
            {
                "code": f.code,
                "name": f.rule.name,
                "level": f.rule.level.value,
                "message": f.message,
                "path": display_path(f.path),
                "line": f.line,
                "column": f.column,
            }
            for f in findings
        ]
        return json.dumps(records, indent=2) + "\n"
    if output == "github":
        lines = [
            f"::{_GITHUB_LEVELS[f.rule.level]} "
            f"file={_escape_github(display_path(f.path), property_=True)},"
            f"line={f.line},col={f.column},title={f.code}::"
            f"{_escape_github(f'{f.code} {f.message}')}"
            for f in findings
        ]
        return "".join(line + "\n" for line in lines)
    lines = [f"{display_path(f.path)}:{f.line}:{f.column}: {f.code} {f.message}" for f in findings]
    return "".join(line + "\n" for line in [*lines, _summary(findings)])
