"""FS2xx: gunicorn configuration files (``gunicorn*.py``) in a project that streams."""

from __future__ import annotations

import ast
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


def check_gunicorn(module: Module) -> Iterator[Finding]:
    """Every FS2xx finding in one gunicorn configuration file."""
    settings: dict[str, tuple[ast.stmt, object]] = {}
    for statement in module.tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                settings[target.id] = (statement, literal(statement.value))
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            settings[statement.target.id] = (statement, literal(statement.value))

    def at(name: str) -> tuple[int, int]:
        if name in settings:
            return settings[name][0].lineno, settings[name][0].col_offset + 1
        return 1, 1

    worker_value = settings.get("worker_class", (None, "sync"))[1]
    threads = settings.get("threads", (None, 1))[1]
    if not isinstance(worker_value, str) or isinstance(threads, bool):
        return
    kind = _worker_kind(worker_value)
    if kind == "sync" and isinstance(threads, int) and threads > 1:
        kind = "gthread"  # gunicorn switches a sync worker with threads to gthread
    if kind == "sync":
        how = "uses" if "worker_class" in settings else "defaults to"
        yield finding("FS201", module.path, *at("worker_class"), how=how)
        return
    if kind == "gthread" and isinstance(threads, int) and threads < MIN_THREADS:
        name = "threads" if "threads" in settings else "worker_class"
        yield finding("FS202", module.path, *at(name), threads=threads, minimum=MIN_THREADS)
    timeout = settings.get("timeout", (None, 30))[1]
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        return
    if timeout == 0 or timeout >= LONG_TIMEOUT:
        yield finding("FS203", module.path, *at("timeout"), value=timeout, worker=kind)
