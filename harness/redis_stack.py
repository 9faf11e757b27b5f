"""redis-server for the deployment tests and benchmarks: 127.0.0.1, free ports, direct children.

Every server is started as a direct child and stopped by its pid. `RedisServer.restart`
stops one and starts a fresh one (empty, as after a crash without persistence) on the same
port. For fault injection a server also takes snapshots on demand (``SAVE``, never on its
own) and can `crash` (SIGKILL: what was written since the last snapshot is lost) and
`start` again from that snapshot. `RedisPair` is a primary and its replica, with the failover
of the primary to a replica that missed the last writes.
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

import redis

from .stack import HOST, StackError, free_port


def redis_binary() -> str | None:
    """The redis-server executable, or None when it is not installed."""
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).is_file()), None
    )


@dataclass
class RedisServer:
    """One redis-server process in *workdir* (its snapshot lives there); ``url`` stays valid
    across `restart`, `crash` and `start`."""

    workdir: Path
    port: int = field(default_factory=free_port)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def client(self) -> redis.Redis:
        """A new client of this server (close it when done)."""
        return redis.Redis(host=HOST, port=self.port, socket_timeout=10, decode_responses=True)

    def start(self, timeout: float = 10.0) -> None:
        """Start it, with the snapshot in *workdir* if there is one."""
        binary = redis_binary()
        if binary is None:
            raise StackError("redis-server is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [binary, "--bind", HOST, "--port", str(self.port), "--save", ""]
        # No automatic snapshot; a replica starts syncing at once.
        args += ["--appendonly", "no", "--repl-diskless-sync-delay", "0"]
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

    def crash(self) -> None:
        """Kill it at once (SIGKILL): the writes since its last snapshot are lost."""
        if self.popen is not None:
            self.popen.kill()
            self.popen.wait()
            self.popen = None

    def save(self) -> None:
        """Take a snapshot now: a `crash` and `start` come back to this point."""
        with contextlib.closing(self.client()) as client:
            client.save()

    def restart(self) -> None:
        """Stop it and start it empty (the snapshot, if any, is removed first)."""
        self.stop()
        (self.workdir / "dump.rdb").unlink(missing_ok=True)
        self.start()

    @contextlib.contextmanager
    def running(self) -> Iterator[RedisServer]:
        """Started for the ``with`` block, and stopped by its pid whatever happens in it."""
        self.start()
        try:
            yield self
        finally:
            self.stop()


@dataclass
class RedisPair:
    """A primary, which clients use at ``primary.url``, and a replica of it.

    `fail_over` promotes the replica after writes it never received, and moves it to the
    primary's port, so clients reconnect to it at the same address; a fresh replica takes
    its place.
    """

    workdir: Path
    primary: RedisServer = field(init=False)
    replica: RedisServer = field(init=False)
    _generation: int = 0

    def __post_init__(self) -> None:
        self.primary = RedisServer(self.workdir / "redis-0")
        self.replica = self._new_replica()

    def start(self) -> None:
        self.primary.start()
        self._follow()

    def stop(self) -> None:
        self.replica.stop()
        self.primary.stop()

    def detach_replica(self) -> None:
        """Cut the replica off: it keeps what it has and receives nothing more, as when its
        link breaks. Writes to the primary from now on are the ones a failover loses."""
        with contextlib.closing(self.replica.client()) as client:
            client.replicaof(HOST, str(free_port()))

    def fail_over(self) -> None:
        """The primary dies; the detached replica becomes the primary, on its port."""
        port = self.primary.port
        self.primary.crash()
        with contextlib.closing(self.replica.client()) as client:
            client.replicaof("NO", "ONE")
            client.config_set("port", str(port))
        self.replica.port = port
        self.primary, self.replica = self.replica, self._new_replica()
        self._follow()

    def restart_primary(self) -> None:
        """The primary crashes and comes back from its last snapshot; the replica resyncs."""
        self.primary.crash()
        self.primary.start()

    def _new_replica(self) -> RedisServer:
        self._generation += 1
        return RedisServer(self.workdir / f"redis-{self._generation}")

    def _follow(self, timeout: float = 10.0) -> None:
        """Start the replica and wait until it has synced with the primary."""
        self.replica.start()
        with contextlib.closing(self.replica.client()) as client:
            client.replicaof(HOST, str(self.primary.port))
            deadline = time.monotonic() + timeout
            while client.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise StackError("the replica did not sync with the primary")
                time.sleep(0.02)
