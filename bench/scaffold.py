"""The scaffolder: ``stream-scaffold`` commands against the plain Copier commands they run."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import git, median, scratch, snapshot_template, tool

Row = dict[str, Any]


def endpoints(n: int) -> list[dict[str, Any]]:
    formats = ("sse", "ndjson", "text")
    return [
        {
            "name": "events" if i == 0 else f"feed_{i}",
            "path": "/events" if i == 0 else f"/feed-{i}",
            "style": "decorator",
            "format": "sse" if i == 0 else formats[i % 3],
            "session": i % 2 == 0,
        }
        for i in range(n)
    ]


def _run(argv: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - start


def _copier_copy(snap: Path, dest: Path, n: int, *, ref: str = "0.1.0") -> list[str]:
    argv = [tool("copier"), "copy", "--defaults", "--trust", "--quiet", "--vcs-ref", ref]
    if n != 1:
        argv += ["-d", "endpoints=" + json.dumps(endpoints(n))]
    return [*argv, str(snap), str(dest)]


def _project(snap: Path, dest: Path, n: int) -> Path:
    """A fresh project in git at template 0.1.0 with *n* endpoints."""
    subprocess.run(_copier_copy(snap, dest, n), check=True, capture_output=True, timeout=300)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "scaffold")
    return dest


def _alternate(runs: int, cases: dict[str, Callable[[int], float]]) -> dict[str, list[float]]:
    """Run every case *runs* times, interleaved so that drift hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(runs):
        for name, case in cases.items():
            times[name].append(case(i))
    return times


def run(
    runs: int = 5,
    sizes: tuple[int, ...] = (1, 10, 50),
    source: str = "worktree",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    cli = tool("stream-scaffold")
    copier_bin = tool("copier")
    results: dict[str, Any] = {"runs": runs}
    with scratch() as tmp:
        snap = snapshot_template(tmp / "template", source=source)
        work = tmp / "work"
        work.mkdir()
        counter = iter(range(10**6))

        def fresh(name: str) -> Path:
            return work / f"{name}-{next(counter)}"

        # ------------------------------------------------------------- new
        log("scaffolder: new vs copier copy")

        def cli_new(_: int) -> float:
            return _run(
                [
                    cli,
                    "new",
                    str(fresh("new")),
                    "--defaults",
                    "--template",
                    str(snap),
                    "--vcs-ref",
                    "0.1.0",
                ]
            )

        def cli_new_nogit(_: int) -> float:
            return _run(
                [
                    cli,
                    "new",
                    str(fresh("new")),
                    "--defaults",
                    "--no-git",
                    "--template",
                    str(snap),
                    "--vcs-ref",
                    "0.1.0",
                ]
            )

        def plain_copy(_: int) -> float:
            return _run(_copier_copy(snap, fresh("copy"), 1))

        def plain_copy_git(_: int) -> float:
            # What `new` does by default, by hand: copy, then git init and a first commit.
            dest = fresh("copy-git")
            start = time.perf_counter()
            subprocess.run(
                _copier_copy(snap, dest, 1), check=True, capture_output=True, timeout=300
            )
            git(dest, "init", "-q")
            git(dest, "add", "-A")
            git(dest, "commit", "-q", "-m", "scaffold")
            return time.perf_counter() - start

        _run(_copier_copy(snap, fresh("warm"), 1))  # warm the OS caches and .pyc files
        times = _alternate(
            runs,
            {
                "copier copy": plain_copy,
                "copier copy + git init + commit": plain_copy_git,
                "stream-scaffold new": cli_new,
                "stream-scaffold new --no-git": cli_new_nogit,
            },
        )
        results["new"] = {k: median(v) for k, v in times.items()}

        # ----------------------------------------------------- in-process
        log("scaffolder: in-process render")
        import copier

        from scaffold_cli._answers import Endpoint
        from scaffold_cli._worker import ProjectSpec, Worker

        def spec(n: int) -> ProjectSpec:
            return ProjectSpec(
                "stream-demo",
                "stream_demo",
                "bench",
                "gthread",
                "nginx",
                [Endpoint(**e) for e in endpoints(n)],
            )

        def inproc_copy(n: int) -> Callable[[int], float]:
            def case(_: int) -> float:
                start = time.perf_counter()
                copier.run_copy(
                    str(snap),
                    fresh("inproc"),
                    data={"endpoints": endpoints(n)},
                    vcs_ref="0.1.0",
                    defaults=True,
                    unsafe=True,
                    quiet=True,
                )
                return time.perf_counter() - start

            return case

        def inproc_new(n: int, git_init: bool) -> Callable[[int], float]:
            def case(_: int) -> float:
                worker = Worker(template=str(snap), vcs_ref="0.1.0", git_init=git_init)
                start = time.perf_counter()
                worker.run_new(fresh("inproc-new"), spec(n))
                return time.perf_counter() - start

            return case

        inproc_copy(1)(0)
        results["inprocess"] = {
            k: median(v)
            for k, v in _alternate(
                runs,
                {
                    "copier.run_copy": inproc_copy(1),
                    "Worker.run_new (no git)": inproc_new(1, False),
                    "Worker.run_new (git init + commit)": inproc_new(1, True),
                },
            ).items()
        }

        # ---------------------------------------------------- add-endpoint
        log("scaffolder: add-endpoint vs copier update")
        extra = endpoints(2)

        def cli_add(commit: bool) -> Callable[[int], float]:
            def case(_: int) -> float:
                project = _project(snap, fresh("add"), 1)
                argv = [cli, "add-endpoint", "feed_1", "--project", str(project)]
                return _run(argv if commit else [*argv, "--no-commit"])

            return case

        def copier_update(project: Path, vcs_ref: str, *extra_args: str) -> float:
            return _run(
                [
                    copier_bin,
                    "update",
                    "--defaults",
                    "--trust",
                    "--quiet",
                    "--vcs-ref",
                    vcs_ref,
                    *extra_args,
                    str(project),
                ]
            )

        def plain_add(_: int) -> float:
            project = _project(snap, fresh("add"), 1)
            return copier_update(project, ":current:", "-d", "endpoints=" + json.dumps(extra))

        results["add-endpoint"] = {
            k: median(v)
            for k, v in _alternate(
                runs,
                {
                    "copier update (:current:, one more endpoint)": plain_add,
                    "stream-scaffold add-endpoint": cli_add(True),
                    "stream-scaffold add-endpoint --no-commit": cli_add(False),
                },
            ).items()
        }

        # ----------------------------------------------- update, by size
        log("scaffolder: update vs copier update, new vs copier copy, by endpoints")
        scaling: list[Row] = []
        for n in sizes:

            def cli_update(_: int, n: int = n) -> float:
                project = _project(snap, fresh(f"up{n}"), n)
                # --trust as for copier update: 0.1.0 -> 0.1.1 crosses a migration entry.
                argv = [cli, "update", "--project", str(project), "--to", "0.1.1", "--trust"]
                return _run(argv)

            def plain_update(_: int, n: int = n) -> float:
                return copier_update(_project(snap, fresh(f"up{n}"), n), "0.1.1")

            def plain_copy_n(_: int, n: int = n) -> float:
                return _run(_copier_copy(snap, fresh(f"copy{n}"), n))

            t = _alternate(
                runs,
                {
                    "copier copy": plain_copy_n,
                    "copier.run_copy": inproc_copy(n),
                    "Worker.run_new": inproc_new(n, True),
                    "copier update": plain_update,
                    "stream-scaffold update": cli_update,
                },
            )
            row: Row = {"endpoints": n, **{k: median(v) for k, v in t.items()}}
            scaling.append(row)
            log(
                f"  {n} endpoints: "
                + ", ".join(f"{k} {v:.3f}s" for k, v in row.items() if k != "endpoints")
            )
            for path in work.iterdir():
                shutil.rmtree(path, ignore_errors=True)
        results["scaling"] = scaling
    return results
