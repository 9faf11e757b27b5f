"""Run pytest in rendered projects, each run in a fresh fork of one warmed-up interpreter.

Started as a script (``python forkserver.py``), never imported by the suite. It imports
pytest, Flask and the rest of what a generated project's tests need once, then reads one
JSON request per line on stdin, ``{"cwd": ..., "args": [...], "log": ..., "timeout": s}``,
and answers one JSON line on stdout: ``{"exit": code or null, "seconds": s}``. ``exit`` is
pytest's exit status, or null when the run was still going after *timeout* seconds and was
killed. Each run forks: the project's package is imported afresh in the child, so a
mutated copy never sees another copy's modules, and the parent stays as clean as it began.
Process start-up and these imports are what a run in a new interpreter spends most of its
time on (about 1 s of the 1.4 s of a one-test run on 2 cores).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import sys
import time

import pytest

# What the generated projects' tests import; a missing one is imported by the run itself.
PRELOADED = (
    "pytest",
    "_pytest.python",
    "_pytest.fixtures",
    "_pytest.assertion.rewrite",
    "flask",
    "flask.testing",
    "werkzeug.test",
    "hypothesis",
    "hypothesis.strategies",
    "click",
    "redis",
)


def main() -> None:
    # The script's directory is not the project's: never import from it.
    sys.path.pop(0)
    for name in PRELOADED:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    for line in sys.stdin:
        request = json.loads(line)
        answer = run(request["cwd"], request["args"], request["log"], request["timeout"])
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def run(cwd: str, args: list[str], log: str, timeout: float) -> dict[str, object]:
    """pytest *args* in *cwd*, its output in *log*; killed with its children after *timeout*."""
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: it only ever leaves through os._exit
        code = 3
        try:
            # A group of its own: a timeout kills what the tests started too (a redis-server).
            os.setpgid(0, 0)
            os.chdir(cwd)
            output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(output, 1)
            os.dup2(output, 2)
            code = int(pytest.main(args))
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    process = os.pidfd_open(pid)
    try:
        finished, _, _ = select.select([process], [], [], timeout)
    finally:
        os.close(process)
    # The child, on a timeout, and whatever the tests started in its group and left running.
    # Until it is reaped below, the child's pid (the group's id) cannot be anyone else's.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return {
        "exit": os.waitstatus_to_exitcode(status) if finished else None,
        "seconds": round(time.monotonic() - started, 3),
    }


if __name__ == "__main__":
    main()
