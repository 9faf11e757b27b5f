"""``python -m bench.check``: ``stream-scaffold check`` against ``ruff check`` on one large tree.

The tree is generated (seeded, the same every run): a repository of about 1,200 Python
files and 370,000 lines, the size of the large projects ``check`` is meant for. Most modules
are ordinary library code (classes, generators, no Flask); a share are Flask blueprints, a
few of which stream through helpers; there are tests, a gunicorn configuration, a
Dockerfile and an nginx configuration. Each tool runs as its own process, the way a user or
CI runs it, several times in alternation; the report gives the median wall time, the peak
resident memory (from the kernel's accounting of the finished process) and the ratio of
``check`` to ``ruff check`` on the same tree. ``--path DIR`` adds real trees.

Not a test: figures vary with the machine; compare the two tools within one run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .report import table

# The goals of issue-sized repositories (~1,200 files, ~370k lines) on a 2-core machine.
GOAL_SECONDS = 2.0
GOAL_MEGABYTES = 150.0


# ------------------------------------------------------------------ the tree
_LIBRARY = '''"""{title}: records, their parsing and their iteration."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass
class {name}:
    """One {lower} and what it holds."""

    key: str
    values: list[int] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def total(self) -> int:
        return sum(self.values)

    def scaled(self, factor: float) -> list[float]:
        return [value * factor for value in self.values]

    def to_json(self) -> str:
        return json.dumps({{"key": self.key, "values": self.values, "labels": self.labels}})
'''

_FUNCTION = '''

def {name}_{number}(records: Iterable[{cls}], limit: int = {limit}) -> Iterator[{cls}]:
    """Yield the records whose total is under {limit}, at most {limit} of them."""
    for index, record in enumerate(itertools.islice(records, limit)):
        if record.total() < {limit}:
            yield record
        elif index % {modulo} == 0:
            record.labels["skipped"] = str(index)


def summarize_{number}(records: Iterable[{cls}]) -> dict[str, float]:
    """Totals, means and extremes of *records*."""
    totals = [record.total() for record in records]
    if not totals:
        return {{"count": 0.0}}
    return {{
        "count": float(len(totals)),
        "mean": sum(totals) / len(totals),
        "low": float(min(totals)),
        "high": float(max(totals)),
    }}


class Reader{number}:
    """Reads {cls} records from lines of JSON."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = list(lines)
        self.errors: list[str] = []

    def __iter__(self) -> Iterator[{cls}]:
        for line in self.lines:
            try:
                data = json.loads(line)
            except ValueError as error:
                self.errors.append(str(error))
                continue
            yield {cls}(data["key"], list(data.get("values", [])))

    def keys(self) -> list[str]:
        return sorted({{record.key for record in self}})
'''

_VIEWS = '''"""HTTP views of {title}."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..lib.{module} import {cls}, summarize_0
from ..streaming import stream_response

bp = Blueprint("{lower}", __name__, url_prefix="/{lower}")


@bp.get("/")
def index():
    return jsonify(summarize_0([]))


@bp.get("/<key>")
def show(key: str):
    record = {cls}(key, [int(v) for v in request.args.getlist("v")])
    return jsonify({{"key": record.key, "total": record.total()}})
'''

_STREAM_VIEW = """

@bp.get("/live")
def live():
    limit = request.args.get("limit", 10, type=int)

    def generate():
        for number in range(limit):
            yield f"data: {{number}}\\n\\n"

    return stream_response(generate(), "text/event-stream")
"""

_TEST = '''"""Tests of {title}."""

from __future__ import annotations

from app.lib.{module} import {cls}, summarize_0


def test_total() -> None:
    assert {cls}("a", [1, 2, 3]).total() == 6


def test_summary_of_nothing() -> None:
    assert summarize_0([]) == {{"count": 0.0}}
'''

_STREAMING = '''"""Streamed responses: the headers a stream needs, in one place."""

from flask import Response

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def stream_response(chunks, mimetype):
    return Response(chunks, mimetype=mimetype, headers=HEADERS)
'''

_NGINX = """events {}

http {
    server {
        listen 8080;

        location / {
            proxy_pass http://127.0.0.1:8000;
            proxy_buffering off;
        }
    }
}
"""


@dataclass(frozen=True)
class Tree:
    root: Path
    files: int
    lines: int


def generate(root: Path, files: int = 1200, lines: int = 370_000, seed: int = 21) -> Tree:
    """A repository of about *files* Python files and *lines* lines under *root*."""
    rng = random.Random(seed)
    per_file = int(lines / (files * 0.72))  # views and tests are short: the library is long
    package = root / "app"
    (package / "lib").mkdir(parents=True)
    (package / "views").mkdir()
    (root / "tests").mkdir()
    for directory in (package, package / "lib", package / "views"):
        (directory / "__init__.py").write_text("")
    (package / "streaming.py").write_text(_STREAMING)
    (root / "gunicorn.conf.py").write_text('wsgi_app = "app:app"\nworker_class = "gevent"\n')
    (root / "Dockerfile").write_text("FROM python:3.12\nCMD gunicorn -c gunicorn.conf.py\n")
    (root / "nginx.conf").write_text(_NGINX)
    written = 4
    number = 0
    while written < files:
        name = f"Record{number}"
        module = f"records_{number}"
        words = {"title": f"Records {number}", "name": name, "lower": f"records{number}"}
        source = _LIBRARY.format(**words)
        functions = 0
        while source.count("\n") < per_file - 40:
            source += _FUNCTION.format(
                name="select",
                number=functions,
                cls=name,
                limit=rng.randint(10, 1000),
                modulo=rng.randint(2, 9),
            )
            functions += 1
        (package / "lib" / f"{module}.py").write_text(source)
        written += 1
        if number % 5 == 0 and written < files:  # one blueprint for five library modules
            views = _VIEWS.format(cls=name, module=module, **words)
            if number % 25 == 0:
                views += _STREAM_VIEW
            (package / "views" / f"{module}.py").write_text(views)
            written += 1
        if number % 10 == 0 and written < files:
            (root / "tests" / f"test_{module}.py").write_text(
                _TEST.format(cls=name, module=module, **words)
            )
            written += 1
        number += 1
    python = list(root.rglob("*.py"))
    total = sum(p.read_text().count("\n") for p in python)
    return Tree(root, len(python), total)


# ------------------------------------------------------------------ measuring
@dataclass(frozen=True)
class Run:
    seconds: float
    megabytes: float
    status: int


def measure(argv: list[str], cwd: Path) -> Run:
    """One run of *argv* as a process: wall time and peak resident memory (from wait4)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return Run(elapsed, usage.ru_maxrss / 1024, process.returncode)


def compare(tree: Path, runs: int) -> list[dict[str, Any]]:
    """``stream-scaffold check`` and ``ruff check`` on *tree*, alternated, *runs* each."""
    bin_dir = Path(sys.executable).parent
    tools = {
        "stream-scaffold check": [str(bin_dir / "stream-scaffold"), "check", "."],
        "ruff check": [
            str(bin_dir / "ruff") if (bin_dir / "ruff").exists() else "ruff",
            "check",
            "--isolated",
            "--no-cache",
            "--exit-zero",
            "--quiet",
            ".",
        ],
    }
    results: dict[str, list[Run]] = {name: [] for name in tools}
    for _ in range(runs):
        for name, argv in tools.items():
            run = measure(argv, tree)
            if run.status not in (0, 1):
                raise RuntimeError(f"{name} failed with status {run.status} on {tree}")
            results[name].append(run)
    rows: list[dict[str, Any]] = []
    for name, found in results.items():
        rows.append(
            {
                "tool": name,
                "median s": statistics.median(r.seconds for r in found),
                "best s": min(r.seconds for r in found),
                "peak RSS MB": max(r.megabytes for r in found),
            }
        )
    check, ruff = rows
    check["x ruff (time)"] = check["median s"] / ruff["median s"]
    check["x ruff (memory)"] = check["peak RSS MB"] / ruff["peak RSS MB"]
    return rows


def run(runs: int = 5, paths: tuple[Path, ...] = (), log: Any = print) -> dict[str, Any]:
    """Measure on the generated tree and on *paths*; the report's figures."""
    results: dict[str, Any] = {"trees": []}
    with tempfile.TemporaryDirectory(prefix="check-bench-") as scratch:
        tree = generate(Path(scratch) / "tree")
        log(f"generated {tree.files} Python files, {tree.lines:,} lines")
        trees = [("generated", tree.root, tree.files, tree.lines)]
        for path in paths:
            python = [p for p in path.rglob("*.py") if "node_modules" not in p.parts]
            lines = sum(p.read_bytes().count(b"\n") for p in python)
            trees.append((path.name, path, len(python), lines))
        for label, root, files, lines in trees:
            log(f"measuring {label}: {runs} runs of each tool")
            for row in compare(root, runs):
                results["trees"].append({"tree": label, "files": files, "lines": lines, **row})
        shutil.rmtree(tree.root, ignore_errors=True)
    generated = next(r for r in results["trees"] if r["tree"] == "generated")
    results["goals"] = {
        "time": f"{generated['median s']:.2f} s (goal {GOAL_SECONDS:g} s)",
        "memory": f"{generated['peak RSS MB']:.0f} MB (goal {GOAL_MEGABYTES:g} MB)",
    }
    return results


def render(results: dict[str, Any]) -> str:
    columns = [
        "tree",
        "files",
        "lines",
        "tool",
        "median s",
        "best s",
        "peak RSS MB",
        "x ruff (time)",
        "x ruff (memory)",
    ]
    goals = results["goals"]
    return (
        "## stream-scaffold check against ruff check\n\n"
        + table(results["trees"], columns)
        + f"\nGenerated tree: {goals['time']}, peak {goals['memory']}.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.check", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs of each tool (median)")
    parser.add_argument(
        "--path", type=Path, action="append", default=[], help="also measure this tree"
    )
    args = parser.parse_args(argv)
    results = run(args.runs, tuple(args.path), log=lambda line: print(line, file=sys.stderr))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
