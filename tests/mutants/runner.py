"""Run the tests of a rendered project through the fork server (see forkserver.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FORKSERVER = Path(__file__).with_name("forkserver.py")

# What every run passes to pytest. Plugins are loaded by name, not discovered: discovery
# imports (and assertion-rewrites) every plugin installed beside the suite, anyio's event
# loops included, which costs more than the tests of a mutant. pytest-timeout is loaded
# because the projects configure it, and switched off: a run that hangs is the fork
# server's to stop, and is told apart from a test that fails.
PYTEST_ARGS = (
    "-q",
    "-x",
    "-p",
    "no:cacheprovider",
    "-p",
    "_hypothesis_pytestplugin",
    "-p",
    "pytest_timeout",
    "-o",
    "timeout=0",
    # The fork server imported Hypothesis before pytest could mark it for rewriting.
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)

# pytest's exit statuses.
PASSED, FAILED = 0, 1


@dataclass(frozen=True)
class Outcome:
    """How a run of a project's tests ended: pytest's exit status, None for a timeout."""

    exit: int | None
    seconds: float
    log: Path

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class ForkServer:
    """One warmed-up interpreter that runs each request in a fork of itself."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(FORKSERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **_environ()},
            text=True,
        )

    def pytest(self, project: Path, tests: tuple[str, ...], log: Path, timeout: float) -> Outcome:
        """Run *tests* (node ids of *project*) with `PYTEST_ARGS`, killed after *timeout*."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        request = {
            "cwd": str(project),
            "args": [*PYTEST_ARGS, *tests],
            "log": str(log),
            "timeout": timeout,
        }
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        answer = json.loads(self._process.stdout.readline())
        return Outcome(answer["exit"], answer["seconds"], log)

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)
