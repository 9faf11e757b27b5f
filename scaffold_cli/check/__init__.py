"""``stream-scaffold check``: find streaming mistakes in a Flask project without running it.

    findings = check_paths([Path(".")], select=["FS1"], ignore=["FS121"])
    print(render(findings, "text"))

Python files are read with `ast`; gunicorn configuration files (``gunicorn*.py``) and nginx
configuration (``*.conf``, ``*.nginx``, ``nginx.conf.*`` with nginx syntax in them) with
their own small readers. All paths
given are checked as one project: the nginx rules match locations against the streaming
routes found in the code. Nothing is imported, run or written.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ._code import check_code
from ._findings import RULES, Finding, Level, Rule, check_selector, selected, suppressed_codes
from ._formats import FORMATS, OutputFormat, render
from ._gunicorn import check_command_lines, check_gunicorn, is_command_file, is_gunicorn_config
from ._model import Module, Project
from ._nginx import Directive, NginxError, included_files, parse
from ._proxy import check_nginx, is_nginx_name, looks_like_nginx, stream_routes

__all__ = [
    "FORMATS",
    "RULES",
    "CheckError",
    "Finding",
    "Level",
    "OutputFormat",
    "Rule",
    "check_paths",
    "check_selector",
    "render",
]

# Directories that hold other people's code or build output, never the project's own.
_SKIPPED = frozenset(
    {"node_modules", "__pycache__", "site-packages", "build", "dist", "venv", "env", "htmlcov"}
)


class CheckError(Exception):
    """The check could not run (a missing path, a file that cannot be parsed): one line."""


def _files(paths: Sequence[Path]) -> Iterator[tuple[Path, Path]]:
    """Each file in *paths*, with its path relative to the directory given (or its name)."""
    for path in paths:
        if not path.exists():
            raise CheckError(f"{path}: no such file or directory")
        if path.is_file():
            yield path, Path(path.name)
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED)
            for name in sorted(files):
                yield Path(root) / name, Path(root).relative_to(path) / name


def _is_test(relative: Path) -> bool:
    """Whether a file is a test module: pytest's names for one, or in a tests directory."""
    name = relative.name
    return (
        name == "conftest.py"
        or name.startswith("test_")
        or name.endswith("_test.py")
        or not {"tests", "test"}.isdisjoint(relative.parent.parts)
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CheckError(f"{path}: cannot read: {error}") from error


def _module(path: Path, text: str, *, is_test: bool) -> Module:
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as error:
        raise CheckError(f"{path}:{error.lineno}: cannot parse: {error.msg}") from error
    return Module(path, tree, is_test=is_test)


def check_paths(
    paths: Sequence[Path], *, select: Iterable[str] = (), ignore: Iterable[str] = ()
) -> list[Finding]:
    """Every finding in *paths* (files or directories), sorted, filtered and unsuppressed.

    Raises `CheckError` when a path is missing or a file cannot be read or parsed.
    """
    select, ignore = list(select), list(ignore)
    modules: list[Module] = []
    nginx_files: list[Path] = []
    command_files: list[Path] = []
    seen: set[Path] = set()
    for path, relative in _files(paths):
        if path in seen:
            continue
        seen.add(path)
        if is_command_file(path):
            command_files.append(path)
        elif path.suffix == ".py":
            modules.append(_module(path, _read(path), is_test=_is_test(relative)))
        elif is_nginx_name(path) and looks_like_nginx(
            path.read_text(encoding="utf-8", errors="replace")
        ):
            nginx_files.append(path)
    project = Project(modules)
    findings = list(check_code(project))
    if project.sites:
        for module in modules:
            if is_gunicorn_config(module.path):
                findings += check_gunicorn(module)
        for path in command_files:
            default_config = (path.parent / "gunicorn.conf.py").is_file()
            findings += check_command_lines(path, _read(path), has_default_config=default_config)
    findings += _nginx_findings(project, nginx_files)
    return _filtered(findings, select, ignore)


def _nginx_findings(project: Project, files: list[Path]) -> list[Finding]:
    parsed: dict[Path, list[Directive]] = {}
    for path in files:
        try:
            parsed[path] = parse(path)
        except NginxError as error:
            raise CheckError(str(error)) from error
    included = {p.resolve() for directives in parsed.values() for p in included_files(directives)}
    routes = stream_routes(project)
    if not routes:
        return []
    heartbeat = project.heartbeat()
    findings: list[Finding] = []
    for path, directives in parsed.items():
        if path.resolve() not in included:
            findings += check_nginx(directives, routes, heartbeat)
    return findings


def _filtered(findings: list[Finding], select: list[str], ignore: list[str]) -> list[Finding]:
    lines: dict[Path, list[str]] = {}
    kept: list[Finding] = []
    for item in sorted(set(findings)):
        if not selected(item.code, select, ignore):
            continue
        if item.path not in lines:
            lines[item.path] = _read(item.path).splitlines()
        text = lines[item.path]
        line = text[item.line - 1] if 0 < item.line <= len(text) else ""
        if any(item.code.startswith(code) for code in suppressed_codes(line)):
            continue
        if kept and (kept[-1].path, kept[-1].line, kept[-1].column, kept[-1].code) == (
            item.path,
            item.line,
            item.column,
            item.code,
        ):
            continue
        kept.append(item)
    return kept
