"""Shared helpers: timing, the machine and versions, process CPU and memory, a snapshot of the
template in a git repository."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A console script of the running interpreter's environment (else from PATH)."""
    candidate = BIN / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of *values* (q from 0 to 100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def number(value: float | None, digits: int = 0) -> str:
    """*value* as a table cell, with thousands separated; ``-`` when there is none."""
    return "-" if value is None else f"{value:,.{digits}f}"


def report(
    rows: list[dict[str, Any]],
    table: Callable[[list[dict[str, Any]]], str],
    json_path: Path | None,
) -> None:
    """End a benchmark: the load average, the rows in *json_path* if given, then the table."""
    print(f"load average at the end: {os.getloadavg()}", flush=True)
    if json_path:
        json_path.write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))


def raise_open_files(want: int = 65536) -> int:
    """Raise this process's open-file limit (and its children's) as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


# ------------------------------------------------------------------ processes
def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """Stop a process we started (and its process group), by pid."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@dataclass
class Usage:
    cpu: float  # seconds of user + system time
    rss: int  # bytes

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.cpu - other.cpu, self.rss - other.rss)


def usage(pids: Sequence[int]) -> Usage:
    """CPU time and RSS summed over the process trees rooted at *pids*."""
    cpu = 0.0
    rss = 0
    seen: set[int] = set()
    for pid in pids:
        for proc in tree(pid):
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                cpu += times.user + times.system
                rss += proc.memory_info().rss
    return Usage(cpu, rss)


def self_cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


# ---------------------------------------------------------------- environment
def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "load average (1, 5, 15 min)": load,
    }


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    found = {"Python": platform.python_version()}
    for label, dist in [
        ("Flask", "flask"),
        ("Werkzeug", "werkzeug"),
        ("gunicorn", "gunicorn"),
        ("gevent", "gevent"),
        ("Copier", "copier"),
        ("sse-starlette", "sse-starlette"),
        ("Starlette", "starlette"),
        ("uvicorn", "uvicorn"),
    ]:
        found[label] = _dist_version(dist)
    for label, binary, flag, pattern in (
        ("nginx", "nginx", "-v", r"nginx/(\S+)"),
        ("Caddy", "caddy", "version", r"v?([0-9][^\s]*)"),
        ("Apache httpd", "apache2", "-v", r"Apache/(\S+)"),
    ):
        path = shutil.which(binary) or f"/usr/sbin/{binary}"
        try:
            out = subprocess.run(
                [path, flag], capture_output=True, text=True, check=False, timeout=10
            )
        except OSError:
            found[label] = "not installed"
            continue
        match = re.search(pattern, out.stderr + out.stdout)
        found[label] = match.group(1) if match else "unknown"
    return found


# ------------------------------------------------------------------- template
TEMPLATE_PARTS = ("copier.yml", "template", "scaffold_cli")


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }
    out = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout


def snapshot_template(dest: Path, *, source: str = "worktree") -> Path:
    """A git repository holding the template as tag ``0.1.0`` and a trivially newer ``0.1.1``.

    *source* ``worktree`` copies the checkout's files as they are (so template edits can be
    measured before they are committed); any other value is a git ref whose files are taken
    (``head``: the last commit).
    """
    dest.mkdir(parents=True)
    if source != "worktree":
        ref = "HEAD" if source == "head" else source
        archive = subprocess.run(
            ["git", "archive", ref, *TEMPLATE_PARTS],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, timeout=60)
    else:
        for part in TEMPLATE_PARTS:
            src = REPO / part
            if src.is_dir():
                shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, dest / part)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "template 0.1.0")
    git(dest, "tag", "0.1.0")
    readme = dest / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\n<!-- 0.1.1 -->\n")
    git(dest, "commit", "-q", "-am", "template 0.1.1")
    git(dest, "tag", "0.1.1")
    return dest


@contextlib.contextmanager
def scratch(prefix: str = "stream-bench-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
