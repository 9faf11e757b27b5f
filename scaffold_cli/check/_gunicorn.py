"""FS2xx: gunicorn configuration files (``gunicorn*.py``) in a project that streams."""

from __future__ import annotations

import ast
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from ._findings import Finding, finding
from ._model import Module, literal

# Fewer threads than this and a few open pages fill a gthread worker: further clients wait.
MIN_THREADS = 8
# A worker timeout at or above this (or 0) reads as an attempt to let long streams live.
LONG_TIMEOUT = 300


def is_gunicorn_config(path: Path) -> bool:
    """``gunicorn.conf.py``, ``gunicorn_config.py`` and the like."""
    return path.suffix == ".py" and path.name.startswith("gunicorn")


def _worker_kind(value: str) -> str:
    lowered = value.lower()
    for kind in ("gthread", "gevent", "eventlet", "tornado", "uvicorn", "sync"):
        if kind in lowered:
            return kind
    if "threadworker" in lowered:
        return "gthread"
    return "other"


# Where a setting was given: its value (`NotImplemented` when not a literal), line, column.
Settings = dict[str, tuple[object, int, int]]


def check_gunicorn(module: Module) -> Iterator[Finding]:
    """Every FS2xx finding in one gunicorn configuration file."""
    settings: Settings = {}
    for statement in module.tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
        elif isinstance(statement, ast.AnnAssign):
            target = statement.target
        else:
            continue
        if isinstance(target, ast.Name):
            value = literal(statement.value)
            settings[target.id] = (value, statement.lineno, statement.col_offset + 1)
    yield from _judge(module.path, settings, (1, 1))


def _judge(path: Path, settings: Settings, default_at: tuple[int, int]) -> Iterator[Finding]:
    """The FS2xx findings for *settings*; a setting left out has gunicorn's default."""

    def at(name: str) -> tuple[int, int]:
        return settings[name][1:] if name in settings else default_at

    worker_value = settings.get("worker_class", ("sync",))[0]
    threads = settings.get("threads", (1,))[0]
    if not isinstance(worker_value, str) or isinstance(threads, bool):
        return
    kind = _worker_kind(worker_value)
    if kind == "sync" and isinstance(threads, int) and threads > 1:
        kind = "gthread"  # gunicorn switches a sync worker with threads to gthread
    if kind == "sync":
        how = "uses" if "worker_class" in settings else "defaults to"
        yield finding("FS201", path, *at("worker_class"), how=how)
        return
    if kind == "gthread" and isinstance(threads, int) and threads < MIN_THREADS:
        name = "threads" if "threads" in settings else "worker_class"
        yield finding("FS202", path, *at(name), threads=threads, minimum=MIN_THREADS)
    timeout = settings.get("timeout", (30,))[0]
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        return
    if timeout == 0 or timeout >= LONG_TIMEOUT:
        yield finding("FS203", path, *at("timeout"), value=timeout, worker=kind)


# ------------------------------------------------------------------ command lines
_COMMAND_FILES = re.compile(
    r"^(Procfile|Dockerfile.*|.*\.dockerfile|.*\.sh|.*\.service|(docker-)?compose.*\.ya?ml)$"
)
_COMMAND = re.compile(r"(?<![\w.-])gunicorn(?![\w.\[=<>~-])")
_OPTIONS = {
    "-k": "worker_class",
    "--worker-class": "worker_class",
    "--threads": "threads",
    "-t": "timeout",
    "--timeout": "timeout",
    "-c": "config",
    "--config": "config",
}


def is_command_file(path: Path) -> bool:
    """Files that start gunicorn from a command line: Procfile, Dockerfile, scripts, units."""
    return _COMMAND_FILES.match(path.name) is not None


def check_command_lines(path: Path, text: str, *, has_default_config: bool) -> Iterator[Finding]:
    """FS2xx findings for each ``gunicorn ...`` command line in *text*.

    The command line's own options are judged; when it reads a configuration file (``-c``,
    or a ``gunicorn.conf.py`` gunicorn finds by itself), what it leaves out comes from there
    and is judged in that file.
    """
    for number, line in enumerate(text.splitlines(), start=1):
        match = _COMMAND.search(line)
        if match is None or line.lstrip().startswith("#") or "install" in line[: match.start()]:
            continue
        words = _words(line[match.end() :])
        # A command has options or an application (module:variable); a mere mention has not.
        if not words or not any(w.startswith("-") or ":" in w for w in words):
            continue
        settings = _command_settings(words, number, match.start() + 1)
        configured = "config" in settings or has_default_config
        if configured and "worker_class" not in settings:
            continue
        if configured and "threads" not in settings:
            settings["threads"] = (NotImplemented, number, match.start() + 1)
        yield from _judge(path, settings, (number, match.start() + 1))


def _words(rest: str) -> list[str] | None:
    """The arguments after ``gunicorn``: a shell line or a JSON exec form (``"-k", "gevent"``)."""
    if rest.startswith('"'):  # the closing quote of "gunicorn" in ["gunicorn", "-k", ...]
        body = rest.removeprefix('"').strip().removeprefix(",").strip().removesuffix("]")
        try:
            return [str(word) for word in json.loads(f"[{body}]")]
        except ValueError:
            return None
    try:
        words = shlex.split(rest, comments=True)
    except ValueError:
        return None
    for index, word in enumerate(words):
        if word in ("&&", "||", ";", "|", "&"):
            return words[:index]
    return words


def _command_settings(words: list[str], line: int, column: int) -> Settings:
    settings: Settings = {}
    pending: str | None = None
    for word in words:
        if pending is not None:
            numeric = pending in ("threads", "timeout")
            settings[pending] = (_number(word) if numeric else word, line, column)
            pending = None
            continue
        name, equals, value = word.partition("=")
        if name in _OPTIONS and equals:
            key = _OPTIONS[name]
            settings[key] = (
                _number(value) if key in ("threads", "timeout") else value,
                line,
                column,
            )
        elif word in _OPTIONS:
            pending = _OPTIONS[word]
        elif word.startswith("-k") and len(word) > 2:
            settings["worker_class"] = (word[2:], line, column)
    return settings


def _number(word: str) -> object:
    """A number given on the command line; `NotImplemented` for anything else (``$THREADS``)."""
    for kind in (int, float):
        try:
            return kind(word)
        except ValueError:
            continue
    return NotImplemented
