"""Output formats of ``stream-scaffold check``: text (ruff-like), JSON, GitHub annotations,
and SARIF 2.1.0 for code scanning."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Literal, get_args

from .. import __version__
from ._findings import RULES, Finding, Level, Rule

OutputFormat = Literal["text", "json", "github", "sarif"]
FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)
_GITHUB_LEVELS = {Level.ERROR: "error", Level.WARNING: "warning", Level.INFO: "notice"}
_SARIF_LEVELS = {Level.ERROR: "error", Level.WARNING: "warning", Level.INFO: "note"}
_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def display_path(path: Path) -> str:
    """*path* relative to the current directory when it is below it, else as it is."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return os.fspath(path)


def _summary(findings: Sequence[Finding], fixed: int | None) -> list[str]:
    if fixed:
        noun = "finding" if fixed == 1 else "findings"
        return [f"Fixed {fixed} {noun}, {len(findings)} remaining."]
    if not findings:
        return ["All checks passed."]
    counts = {level: sum(f.rule.level is level for f in findings) for level in Level}
    parts = ", ".join(
        f"{n} {level.value}{'s' if n > 1 and level is not Level.INFO else ''}"
        for level, n in counts.items()
        if n
    )
    noun = "finding" if len(findings) == 1 else "findings"
    lines = [f"Found {len(findings)} {noun} ({parts})."]
    fixable = sum(bool(f.fix) for f in findings)
    if fixable and fixed is None:
        lines.append(f"[*] {fixable} fixable with the `--fix` option.")
    return lines


def _escape_github(text: str, *, property_: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def _documentation() -> str | None:
    """The documentation's address, as the installed distribution declares it."""
    try:
        urls = metadata.metadata("flask-stream-scaffold").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip() == "Documentation":
            return str(url).strip().rstrip("/") + "/"
    return None


def _sarif_rule(rule: Rule, documentation: str | None) -> dict[str, object]:
    described: dict[str, object] = {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.name.replace("-", " ")},
        "fullDescription": {"text": re.sub(r"\{(\w+)[^}]*\}", r"<\1>", rule.message)},
        "defaultConfiguration": {"level": _SARIF_LEVELS[rule.level]},
    }
    if documentation is not None:
        described["helpUri"] = f"{documentation}check/#{rule.code.lower()}-{rule.name}"
    return described


def sarif(findings: Sequence[Finding]) -> dict[str, object]:
    """*findings* as a SARIF 2.1.0 log: one run, every rule described, paths relative to
    the directory the check ran in (``%SRCROOT%`` for code scanning)."""
    documentation = _documentation()
    index = {code: number for number, code in enumerate(RULES)}
    driver: dict[str, object] = {
        "name": "stream-scaffold",
        "version": __version__,
        "rules": [_sarif_rule(rule, documentation) for rule in RULES.values()],
    }
    if documentation is not None:
        driver["informationUri"] = documentation
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": _SARIF_LEVELS[f.rule.level],
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": display_path(f.path), "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": f.line, "startColumn": f.column},
                    }
                }
            ],
        }
        for f in findings
    ]
    return {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }


def render(findings: Sequence[Finding], output: OutputFormat, fixed: int | None = None) -> str:
    """*findings* in the format *output*, one of `FORMATS`, ending with a line break. In
    text, ``[*]`` marks what ``--fix`` fixes; *fixed* is how many it has fixed, if it ran."""
    if output == "sarif":
        return json.dumps(sarif(findings), indent=2) + "\n"
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
                "fixable": bool(f.fix),
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
    lines = [
        f"{display_path(f.path)}:{f.line}:{f.column}: {f.code} {'[*] ' if f.fix else ''}{f.message}"
        for f in findings
    ]
    return "".join(line + "\n" for line in [*lines, *_summary(findings, fixed)])
