"""redis-server for the deployment tests and benchmarks: 127.0.0.1, free ports, direct children.

Every server is started as a direct child and stopped by its pid. `RedisServer.restart`
stops one and starts a fresh one (empty, as after a crash without persistence) on the same
port. For fault injection a server also takes snapshots on demand (``SAVE``, never on its
own) and can `crash` (SIGKILL: what was written since the last snapshot is lost) and
`start` again from that snapshot. `RedisPair` is a primary and its replica, with the failover
of the primary to a replica that missed the last writes. `SentinelGroup` is a primary and
its replica watched by three Sentinels, `ClusterGroup` a Redis Cluster of three shards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

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
    # More options of redis-server (cluster mode, for one).
    extra_args: list[str] = field(default_factory=list)

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
        args += ["--appendonly", "no", "--repl-diskless-sync-delay", "0", *self.extra_args]
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

    @property
    def url(self) -> str:
        return self.primary.url

    def client(self) -> redis.Redis:
        return self.primary.client()

    def stream_key(self, topic: str) -> str:
        return f"channel:{topic}"

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


def sentinel_binary() -> str | None:
    """The redis-sentinel executable (Debian's redis-sentinel package), or None."""
    return shutil.which("redis-sentinel")


@dataclass
class SentinelGroup:
    """A primary and its replica watched by three Sentinels, which clients ask for the primary.

    Failures are detected within *down_after_ms* and a failover may take *failover_timeout_ms*:
    short, so that a test sees one in a few seconds. `fail_over` kills the primary; with a
    *lag* the replica is first held (SIGSTOP) and cut off for that long, so the writes of
    that moment never reach it and the failover loses them, as with a replica that lags.
    """

    workdir: Path
    service: str = "main"
    down_after_ms: int = 1000
    failover_timeout_ms: int = 3000
    servers: list[RedisServer] = field(init=False)
    sentinels: list[RedisServer] = field(init=False)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.servers = [RedisServer(self.workdir / f"redis-{n}") for n in range(2)]
        self.sentinels = [RedisServer(self.workdir / f"sentinel-{n}") for n in range(3)]

    @property
    def url(self) -> str:
        """The broker URL: the Sentinels and the service, as the app is configured."""
        hosts = ",".join(f"{HOST}:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    @property
    def primary(self) -> RedisServer:
        """The server the Sentinels name as the primary now."""
        for sentinel in self.sentinels:
            with (
                contextlib.suppress(redis.RedisError, OSError),
                contextlib.closing(sentinel.client()) as client,
            ):
                address = cast(
                    "tuple[str, int]", client.sentinel_get_master_addr_by_name(self.service)
                )
                return next(s for s in self.servers if s.port == int(address[1]))
        raise StackError("no Sentinel answers")

    def client(self) -> redis.Redis:
        return self.primary.client()

    def stream_key(self, topic: str) -> str:
        return f"channel:{topic}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the servers and the Sentinels; wait until every Sentinel knows the replica
        and the two other Sentinels (so that they can agree on a failover).

        Sentinels find each other by the hellos they publish every 2 s, and the replica in
        the primary's INFO, asked for every 10 s: on a loaded machine that took over 20 s.
        """
        binary = sentinel_binary()
        if binary is None:
            raise StackError("redis-sentinel is not installed")
        primary, replica = self.servers
        primary.start()
        replica.start()
        deadline = time.monotonic() + timeout
        with contextlib.closing(replica.client()) as client:
            client.replicaof(HOST, str(primary.port))
            while client.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise StackError("the replica did not sync with the primary")
                time.sleep(0.02)
        for sentinel in self.sentinels:
            sentinel.workdir.mkdir(parents=True, exist_ok=True)
            config = sentinel.workdir / "sentinel.conf"
            config.write_text(
                f"port {sentinel.port}\nbind {HOST}\ndir {sentinel.workdir}\n"
                f"sentinel monitor {self.service} {HOST} {primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}\n"
            )
            with (sentinel.workdir / "sentinel.log").open("ab") as log:
                sentinel.popen = subprocess.Popen(
                    [binary, str(config)],
                    cwd=sentinel.workdir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        while not all(self._ready(sentinel) for sentinel in self.sentinels):
            if time.monotonic() > deadline:
                self.stop()
                raise StackError("the Sentinels did not find the replica and each other")
            time.sleep(0.1)

    def _ready(self, sentinel: RedisServer) -> bool:
        with (
            contextlib.suppress(redis.RedisError, OSError),
            contextlib.closing(sentinel.client()) as client,
        ):
            replicas = cast("list[object]", client.sentinel_slaves(self.service))
            others = cast("list[object]", client.sentinel_sentinels(self.service))
            return len(replicas) == 1 and len(others) == 2
        return False

    def fail_over(self, lag: float = 0.0) -> float:
        """Kill the primary (SIGKILL), after holding the replica for *lag* seconds; return
        the moment of the kill (``time.monotonic()``). The Sentinels promote the replica."""
        primary = self.primary
        replica = next(s for s in self.servers if s is not primary)
        assert replica.popen is not None
        if lag:
            # Held, and its link cut: what the primary had already sent it (in the socket's
            # buffers) it still gets; what is written from now on it never does.
            os.kill(replica.popen.pid, signal.SIGSTOP)
            with contextlib.closing(primary.client()) as client:
                client.client_kill_filter(_type="replica")
            time.sleep(lag)
        primary.crash()
        killed = time.monotonic()
        if lag:
            os.kill(replica.popen.pid, signal.SIGCONT)
        return killed

    def switch_over(self, timeout: float = 30.0, *, demote: bool = True) -> float:
        """Have the Sentinels promote the replica while the primary lives on (``SENTINEL
        FAILOVER``), and demote the old primary as soon as they name the new one: the app's
        connections still on it get ``READONLY`` on their next write. (The Sentinels demote
        it themselves at their next look at it, up to ten seconds later; until then it takes
        writes that are lost.) Return when the switch began (monotonic) once the old primary
        follows the new one; without *demote*, as soon as the Sentinels name the new one."""
        old = self.primary
        deadline = time.monotonic() + timeout
        with contextlib.closing(self.sentinels[0].client()) as client:
            while True:
                try:
                    client.sentinel_failover(self.service)
                    break
                except redis.ResponseError:
                    # NOGOODSLAVE: the Sentinels have not yet seen a replica come back.
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        began = time.monotonic()
        while True:
            with contextlib.suppress(StackError, redis.RedisError, OSError):
                if (new := self.primary) is not old:
                    if not demote:
                        return began
                    with contextlib.closing(old.client()) as client:
                        if client.info("replication").get("role") == "master":
                            client.replicaof(HOST, str(new.port))
                        if client.info("replication").get("master_link_status") == "up":
                            return began
            if time.monotonic() > deadline:
                raise StackError("the Sentinels did not switch over")
            time.sleep(0.05)

    def rejoin(self, timeout: float = 30.0) -> None:
        """Once the Sentinels have promoted the replica, start the dead primary again (empty):
        they make it a replica of the new one. Wait until it has synced, so that the group
        can fail over again."""
        dead = next(s for s in self.servers if s.popen is None)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(StackError):
                if self.primary is not dead:
                    break
            if time.monotonic() > deadline:
                raise StackError("the Sentinels did not fail over")
            time.sleep(0.05)
        (dead.workdir / "dump.rdb").unlink(missing_ok=True)
        dead.start()
        with contextlib.closing(dead.client()) as client:
            # What the Sentinels would tell it once they notice it (within seconds).
            client.replicaof(HOST, str(self.primary.port))
            while client.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise StackError("the old primary did not become a replica")
                time.sleep(0.05)

    def stop(self) -> None:
        for server in [*self.sentinels, *self.servers]:
            if server.popen is not None and server.popen.poll() is None:
                # A held replica must be able to act on SIGTERM.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(server.popen.pid, signal.SIGCONT)
            server.stop()


@dataclass
class ClusterGroup:
    """A Redis Cluster of three primaries (no replicas), slots split in thirds.

    `restart_shard` crashes one shard and starts it again, empty, on the same port: the
    cluster serves its slots again once it is back, with everything it held lost.
    """

    workdir: Path
    shards: int = 3
    servers: list[RedisServer] = field(init=False)
    bus_ports: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.servers = [RedisServer(self.workdir / f"shard-{n}") for n in range(self.shards)]
        self.bus_ports = [free_port() for _ in self.servers]

    @property
    def url(self) -> str:
        nodes = ",".join(f"{HOST}:{server.port}" for server in self.servers)
        return f"redis+cluster://{nodes}"

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host=HOST, port=self.servers[0].port, decode_responses=True)

    def stream_key(self, topic: str) -> str:
        return f"channel:{{{topic}}}"

    def start(self, timeout: float = 20.0) -> None:
        for server, bus in zip(self.servers, self.bus_ports, strict=True):
            # The node's cluster state lives in its workdir: a restart forgets nothing of it.
            server.extra_args = [
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "2000",
                "--cluster-port",
                str(bus),
            ]
            server.start()
        clients = [server.client() for server in self.servers]
        try:
            for n, client in enumerate(clients):
                low, high = n * 16384 // self.shards, (n + 1) * 16384 // self.shards - 1
                client.cluster("ADDSLOTSRANGE", low, high)
            for client in clients[1:]:
                client.cluster("MEET", HOST, self.servers[0].port, self.bus_ports[0])
            self._wait(clients, timeout)
        finally:
            for client in clients:
                client.close()

    def _wait(self, clients: list[redis.Redis], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(redis.RedisError, OSError):
                infos = [client.cluster("INFO") for client in clients]
                if all(
                    info.get("cluster_state") == "ok"
                    and int(info.get("cluster_known_nodes", 0)) == self.shards
                    for info in infos
                ):
                    return
            if time.monotonic() > deadline:
                raise StackError("the cluster did not come up")
            time.sleep(0.05)

    def restart_shard(self, index: int) -> None:
        """Crash shard *index* and start it again with nothing but its cluster state."""
        server = self.servers[index]
        server.crash()
        (server.workdir / "dump.rdb").unlink(missing_ok=True)
        server.start()
        clients = [s.client() for s in self.servers]
        try:
            self._wait(clients, 20.0)
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
