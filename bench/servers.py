"""Start the servers under test: the generated project on gunicorn (optionally behind one of its
generated proxy configs: nginx, Caddy or Apache httpd) with its own deploy configs, the bare
Flask reference on the same gunicorn config, and the sse-starlette reference on uvicorn.
gunicorn and the proxies are started by the server harness
(``harness/stack.py``); uvicorn is started here."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import stack

from .common import REPO

SECRET = "bench-only-secret-key-" + "x" * 32


@dataclass
class Server:
    name: str
    port: int
    pids: list[int]  # roots of the process trees to account CPU and memory to
    path: str = "/events"


def render(dest: Path, server: str, proxy: str = "nginx", vcs_ref: str = "HEAD") -> stack.Project:
    """The one-endpoint project of the benchmarks, from the work tree or from *vcs_ref*."""
    return stack.render_project(
        dest,
        server=server,
        proxy=proxy,
        vcs_ref=vcs_ref,
        endpoints=[
            {
                "name": "events",
                "path": "/events",
                "style": "decorator",
                "format": "sse",
                "session": True,
            }
        ],
    )


def _gunicorn_args(workers: int | None, connections: int | None) -> list[str]:
    args: list[str] = []
    if workers is not None:
        args += ["--workers", str(workers)]
    if connections is not None:
        args += ["--worker-connections", str(connections)]
    return args


@contextlib.contextmanager
def generated(
    project: stack.Project,
    logs: Path,
    *,
    stamp: bool,
    workers: int | None = None,
    connections: int | None = None,
    nginx: bool = False,
    proxy: stack.Project | None = None,
) -> Iterator[Server]:
    """The generated app, unchanged (``BENCH_STAMP=1`` adds a timestamp to each payload).

    Behind nginx when *nginx* is set, or behind the proxy config of the project *proxy*
    (rendered with ``proxy="caddy"``, say): that proxy, on plain HTTP/1.1.
    """
    if nginx and proxy is None:
        proxy = project
    app = stack.start_gunicorn(
        project,
        log_path=logs / f"gunicorn-{project.server}.log",
        app="bench.apps.stamped:create_app()",
        pythonpath=[REPO],
        env={
            "BENCH_PACKAGE": project.package,
            "BENCH_STAMP": "1" if stamp else "0",
            "FLASK_SECRET_KEY": SECRET,
        },
        extra_args=_gunicorn_args(workers, connections),
    )
    front = None
    try:
        if proxy is not None:
            front = stack.start_proxy(
                proxy, logs / f"{proxy.proxy}-{project.server}", upstream_port=app.port
            )
            name = f"generated/{project.server}+{proxy.proxy}"
            yield Server(name, front.port, [app.pid, front.pid])
        else:
            yield Server(f"generated/{project.server}", app.port, [app.pid])
    finally:
        if front is not None:
            stack.stop(front)
        stack.stop(app)


@contextlib.contextmanager
def bare_flask(
    project: stack.Project,
    logs: Path,
    *,
    stamp: bool,
    workers: int | None = None,
    connections: int | None = None,
    json_payload: bool = False,
) -> Iterator[Server]:
    """The bare Flask reference on the generated project's gunicorn config."""
    app = stack.start_gunicorn(
        project,
        log_path=logs / f"bare-{project.server}.log",
        app="bench.apps.bare_flask:app",
        pythonpath=[REPO],
        env={"BENCH_STAMP": "1" if stamp else "0", "BENCH_BARE_JSON": "1" if json_payload else "0"},
        extra_args=_gunicorn_args(workers, connections),
    )
    try:
        name = "bare Flask+JSON" if json_payload else "bare Flask"
        yield Server(f"{name}/{project.server}", app.port, [app.pid])
    finally:
        stack.stop(app)


@contextlib.contextmanager
def starlette(logs: Path, *, stamp: bool, extra: Sequence[str] = ()) -> Iterator[Server]:
    """sse-starlette on uvicorn: one process, uvloop and httptools when installed."""
    port = stack.free_port()
    env = {
        **os.environ,
        "BENCH_STAMP": "1" if stamp else "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.apps.starlette_sse:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
    ]
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "uvicorn.log").open("ab") as log:
        popen = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    process = stack.Process(f"uvicorn:{port}", popen, port, logs / "uvicorn.log")
    try:
        stack.wait_until_answers(port, process=process)
        yield Server("sse-starlette/uvicorn", port, [popen.pid])
    finally:
        stack.stop(process)
