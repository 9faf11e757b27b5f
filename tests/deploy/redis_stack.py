"""A redis-server for the deployment tests: 127.0.0.1, a free port, no persistence.

Started as a direct child and stopped by its pid; `RedisServer.restart` stops it and starts
a fresh one (empty, as after a crash without persistence) on the same port.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .stack import HOST, StackError, free_port


def redis_binary() -> str | None:
    """The redis-server executable, or None when it is not installed."""
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).is_file()), None
    )


@dataclass
class RedisServer:
    """One redis-server process; ``url`` stays valid across `restart`."""

    workdir: Path
    port: int = field(default_factory=free_port)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        binary = redis_binary()
        if binary is None:
            raise StackError("redis-server is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            "--bind",
            HOST,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        with (self.workdir / "redis.log").open("ab") as log:
            self.popen = subprocess.Popen(
                args,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1):
                return
            if self.popen.poll() is not None or time.monotonic() > deadline:
                log_text = (self.workdir / "redis.log").read_text(errors="replace")
                self.stop()
                raise StackError(f"redis-server did not start:\n{log_text[-2000:]}")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it by its pid (SIGTERM, then SIGKILL); safe to call twice."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=timeout)
        self.popen = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @contextlib.contextmanager
    def running(self) -> Iterator[RedisServer]:
        """Started for the ``with`` block, and stopped by its pid whatever happens in it."""
        self.start()
        try:
            yield self
        finally:
            self.stop()
