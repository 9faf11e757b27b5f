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

import contextlib
import difflib
import gc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import _apache as apache
from . import _caddy as caddy
from ._code import check_code
from ._findings import (
    RULES,
    Edit,
    Finding,
    Level,
    Rule,
    check_selector,
    selected,
    suppressed_codes,
)
from ._fixes import apply
from ._formats import FORMATS, OutputFormat, display_path, render
from ._gunicorn import GunicornProject, is_command_file, is_gunicorn_config
from ._model import Project
from ._nginx import Directive, included_files, parse
from ._proxy import (
    check_apache,
    check_caddy,
    check_nginx,
    is_caddy_name,
    is_main_apache,
    is_main_nginx,
    is_nginx_name,
    looks_like_apache,
    looks_like_nginx,
    stream_routes,
)
from ._sources import (
    CheckError,
    ConfigError,
    PythonSources,
    SourceFile,
    project_files,
    read_text,
    reading,
)

__all__ = [
    "FORMATS",
    "RULES",
    "CheckError",
    "Finding",
    "Fixes",
    "Level",
    "OutputFormat",
    "Rule",
    "check_paths",
    "check_selector",
    "fix_paths",
    "render",
]


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while the trees are built: syntax trees hold no cycles,
    and with hundreds of thousands of live nodes each collection would walk them all."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_paths(
    paths: Sequence[Path], *, select: Iterable[str] = (), ignore: Iterable[str] = ()
) -> list[Finding]:
    """Every finding in *paths* (files or directories), sorted, filtered and unsuppressed.

    A file that cannot be read or parsed is a finding of its own (FS001); the rest is checked.
    Raises `CheckError` when a path does not exist.
    """
    with _collection_paused():
        findings = _check(project_files(paths))
    return _filtered(findings, list(select), list(ignore))


# Rounds of fixes at most: a fix can make room for another (two edits of one literal).
_FIX_ROUNDS = 5


@dataclass(frozen=True)
class Fixes:
    """What ``--fix`` did (or ``--diff`` would do): the findings left, how many were fixed,
    and each changed file's text before and after."""

    remaining: list[Finding]
    fixed: int
    changed: dict[Path, tuple[str, str]]

    def diff(self) -> str:
        """The changes as a unified diff, paths as the text output shows them."""
        parts: list[str] = []
        for path, (before, after) in sorted(self.changed.items()):
            name = display_path(path)
            parts += difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                f"a/{name}",
                f"b/{name}",
            )
        return "".join(parts)


def fix_paths(
    paths: Sequence[Path],
    *,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
    write: bool = True,
) -> Fixes:
    """Apply the fixes of the findings in *paths* (round after round, each round re-checking
    the fixed text) and write the changed files when *write*; see `Fixes`."""
    select, ignore = list(select), list(ignore)
    current: dict[Path, str] = {}
    original: dict[Path, str] = {}
    fixed = 0
    for _ in range(_FIX_ROUNDS):
        with reading(current):
            findings = check_paths(paths, select=select, ignore=ignore)
            edits: dict[Path, list[Edit]] = {}
            for item in findings:
                for edit in item.fix:
                    edits.setdefault(edit.path, []).append(edit)
            made: set[Edit] = set()
            for path, group in edits.items():
                text = read_text(path)
                if isinstance(text, Finding):
                    continue
                original.setdefault(path, text)
                current[path], done = apply(text, group)
                made.update(done)
        fixed += sum(1 for item in findings if item.fix and set(item.fix) <= made)
        if not made:
            break
    with reading(current):
        remaining = check_paths(paths, select=select, ignore=ignore)
    changed = {p: (original[p], t) for p, t in current.items() if t != original[p]}
    if write:
        for path, (_, text) in changed.items():
            path.write_text(text, encoding="utf-8")
    return Fixes(remaining, fixed, changed)


def _check(files: list[SourceFile]) -> list[Finding]:
    python = PythonSources(files)
    modules = python.modules()
    project = Project(modules)
    more = python.mentioning(*project.stream_names())
    if more:
        project = Project(modules + more)
    if project.sites:
        project.settings_modules = python.settings_modules()
    findings = [*python.findings, *check_code(project)]
    proxies: dict[str, dict[Path, str]] = {"nginx": {}, "caddy": {}, "apache": {}}
    command_files: list[Path] = []
    for file in files:
        if is_command_file(file.path):
            command_files.append(file.path)
            continue
        caddyfile = is_caddy_name(file.path)
        if not caddyfile and (file.path.suffix == ".py" or not is_nginx_name(file.path)):
            continue
        text = read_text(file.path)
        if isinstance(text, Finding):
            findings.append(text)
        elif caddyfile:
            proxies["caddy"][file.path] = text
        elif looks_like_nginx(text):
            proxies["nginx"][file.path] = text
        elif looks_like_apache(text):
            proxies["apache"][file.path] = text
    if project.sites:
        findings += _gunicorn_findings(python, command_files)
    findings += _nginx_findings(project, proxies["nginx"])
    findings += _other_proxy_findings(project, proxies["caddy"], proxies["apache"])
    return findings


def _gunicorn_findings(python: PythonSources, command_files: list[Path]) -> list[Finding]:
    gunicorn = GunicornProject(python.find, python.default_config)
    for path in command_files:
        text = read_text(path)
        if isinstance(text, str):
            gunicorn.add_file(path, text)
    for file in python.files:
        if is_gunicorn_config(file.path) and (module := python.parse(file.path)) is not None:
            gunicorn.configs.append(module)
    return list(gunicorn.findings())


def _nginx_findings(project: Project, files: dict[Path, str]) -> list[Finding]:
    """FS3xx findings for nginx, and FS001 for a file that is not well formed. Each file not
    included by another is checked, its includes read against its main configuration's
    directory (see `_conf_dir`)."""
    mains = [path for path, text in files.items() if is_main_nginx(path, text)]
    parsed: dict[Path, list[Directive]] = {}
    findings: list[Finding] = []
    for path in files:
        try:
            parsed[path] = parse(path, _conf_dir(path, mains))
        except ConfigError as error:
            findings.append(error.finding())
    included = {p.resolve() for directives in parsed.values() for p in included_files(directives)}
    routes = stream_routes(project)
    if not routes:
        return findings
    heartbeat = project.heartbeat()
    for path, directives in parsed.items():
        if path.resolve() not in included:
            findings += check_nginx(directives, routes, heartbeat)
    return findings


def _other_proxy_findings(
    project: Project, caddyfiles: dict[Path, str], apache_files: dict[Path, str]
) -> list[Finding]:
    """FS31x for Caddyfiles, FS32x for Apache httpd, FS330 for both, FS001 for a file that
    is not well formed. A file another one includes (or imports) is checked as part of it."""
    findings: list[Finding] = []
    caddy_parsed: dict[Path, list[caddy.Node]] = {}
    for path in caddyfiles:
        try:
            caddy_parsed[path] = caddy.parse(path)
        except ConfigError as error:
            findings.append(error.finding())
    mains = [path for path, text in apache_files.items() if is_main_apache(text)]
    apache_parsed: dict[Path, list[apache.Directive]] = {}
    for path in apache_files:
        try:
            apache_parsed[path] = apache.parse(path, _conf_dir(path, mains))
        except ConfigError as error:
            findings.append(error.finding())
    routes = stream_routes(project)
    if not routes:
        return findings
    heartbeat = project.heartbeat()
    imported = {p.resolve() for nodes in caddy_parsed.values() for p in _imported(nodes)}
    for path, nodes in caddy_parsed.items():
        if path.resolve() not in imported:
            findings += check_caddy(nodes, routes, heartbeat)
    included = {
        p.resolve()
        for directives in apache_parsed.values()
        for p in apache.included_files(directives)
    }
    for path, directives in apache_parsed.items():
        if path.resolve() not in included:
            findings += check_apache(directives, routes, heartbeat)
    return findings


def _imported(nodes: list[caddy.Node]) -> Iterator[Path]:
    for node in nodes:
        yield from node.included
        if node.block is not None:
            yield from _imported(node.block)


def _conf_dir(path: Path, mains: list[Path]) -> Path | None:
    """The directory nginx reads *path*'s relative includes against: that of the main
    configuration file in the nearest directory at or above *path*'s (None: not known)."""
    candidates = [main.parent for main in mains if main.parent in (path.parent, *path.parents)]
    return max(candidates, key=lambda directory: len(directory.parts), default=None)


def _filtered(findings: list[Finding], select: list[str], ignore: list[str]) -> list[Finding]:
    lines: dict[Path, list[str]] = {}
    kept: list[Finding] = []
    for item in sorted(set(findings)):
        if not selected(item.code, select, ignore):
            continue
        if item.path not in lines:
            content = read_text(item.path)
            lines[item.path] = content.splitlines() if isinstance(content, str) else []
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
