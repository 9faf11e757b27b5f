"""Where the Redis broker's data lives, from its URL: one server, a Sentinel group, a Cluster.

The URL forms (``rediss`` for TLS in each):

* ``redis://[[user]:password@]host[:port][/db][?option=value&...]``, ``rediss://``: one
  server, as redis-py reads them;
* ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db][?...]``:
  the primary that the Sentinels (port 26379 by default) name *service*, followed across
  failovers. ``sentinel_username`` and ``sentinel_password`` log in to the Sentinels
  themselves; the user and password before ``@`` are the data servers'. This is the form of
  the Redis-Sentinel-Url package, RedisVL and docket;
* ``redis+cluster://[[user]:password@]host[:port][,host[:port]...][/0][?...]``: a Redis
  Cluster, found from any of the nodes given (port 6379 by default). A cluster has one
  database, 0.

Every other query option is one of redis-py's URL options (``socket_keepalive=true``,
``ssl_cert_reqs=required``, ...), applied to the data servers' connections.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.exceptions import RedisClusterException, RedisError
from redis.sentinel import Sentinel, SentinelConnectionPool

from . import CLUSTER_SCHEMES, SENTINEL_SCHEMES, SERVER_SCHEMES

_DEFAULT_PORT = {"sentinel": 26379, "cluster": 6379}
_FORMS = {
    "sentinel": "redis+sentinel://HOST:26379[,HOST:26379...]/SERVICE[/DB]",
    "cluster": "redis+cluster://HOST:PORT[,HOST:PORT...]",
}
# Options of the Sentinels' own connections, given with this prefix in the query.
_SENTINEL_OPTION = "sentinel_"
# A Sentinel answers at once or not at all: a dead one must not hold up the search for the
# primary for as long as a data server's timeout.
_SENTINEL_TIMEOUT = 1.0


@dataclass(frozen=True)
class Topology:
    """What a broker URL names.

    *kind* is ``server``, ``sentinel`` or ``cluster``; *hosts* the Sentinels or the
    cluster nodes to start from (empty for a server); *service* the Sentinels' name of the
    primary; *options* redis-py's connection options from the URL (password, db, TLS, ...).
    """

    kind: Literal["server", "sentinel", "cluster"]
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    sentinel_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cluster(self) -> bool:
        return self.kind == "cluster"


def parse(url: str) -> Topology:
    """Read a broker URL; ``ValueError`` saying what is wrong, without any password in it."""
    scheme, _, rest = url.partition("://")
    if scheme in SERVER_SCHEMES:
        return Topology("server", url)
    if scheme in SENTINEL_SCHEMES:
        kind: Literal["sentinel", "cluster"] = "sentinel"
    elif scheme in CLUSTER_SCHEMES:
        kind = "cluster"
    else:
        raise ValueError(f"not a Redis URL ({scheme}://...)")
    rest = rest.partition("#")[0]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, host_list = netloc.rpartition("@")
    hosts = tuple(_host(part, kind) for part in host_list.split(","))
    names = [name for name in path.split("/") if name]
    service = ""
    if kind == "sentinel":
        if not names:
            raise ValueError(f"a Sentinel URL names the primary's service: {_FORMS[kind]}")
        service = names.pop(0)
    if len(names) > 1 or (names and not names[0].isdigit()):
        raise ValueError(f"{'/'.join(names)!r} is not a database number: {_FORMS[kind]}")
    db = names[0] if names else "0"
    if kind == "cluster" and db != "0":
        raise ValueError("a Redis Cluster has one database, 0")
    pairs = parse_qsl(query, keep_blank_values=True)
    sentinel_query = urlencode(
        [(n.removeprefix(_SENTINEL_OPTION), v) for n, v in pairs if n.startswith(_SENTINEL_OPTION)]
    )
    sentinel_options: dict[str, Any] = parse_url(f"redis://localhost?{sentinel_query}")
    sentinel_options.pop("host", None)
    data_query = urlencode([(n, v) for n, v in pairs if not n.startswith(_SENTINEL_OPTION)])
    # redis-py reads the options of the data servers, as it would in a redis:// URL.
    tls = scheme.startswith("rediss")
    options: dict[str, Any] = parse_url(
        f"{'rediss' if tls else 'redis'}://{userinfo}{at}localhost/{db}?{data_query}"
    )
    for name in ("host", "port", "connection_class"):
        options.pop(name, None)
    if tls:
        options["ssl"] = True
    if kind == "cluster":
        options.pop("db", None)
    return Topology(kind, url, hosts, service, options, sentinel_options)


def _host(text: str, kind: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port``, with the kind's default port."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"a host is missing: {_FORMS[kind]}")
    if port and not port.isdigit():
        raise ValueError(f"{port!r} is not a port number: {_FORMS[kind]}")
    return host, int(port) if port else _DEFAULT_PORT[kind]


class _SentinelBlockingPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's pool of primary connections, waiting for a free one when all are in use
    (as the broker's pool for one server does) instead of failing."""


def command_client(
    topology: Topology, options: Mapping[str, Any], pool_size: int
) -> redis.Redis | RedisCluster:
    """The client for commands: *pool_size* connections at most (per node of a cluster), a
    burst of callers waiting for one. *options* are the broker's own (timeouts, decoding);
    the URL's come on top."""
    bounded: dict[str, Any] = {"max_connections": pool_size, "timeout": 10}
    if topology.kind == "server":
        pool = redis.BlockingConnectionPool.from_url(topology.url, **bounded, **options)
        return redis.Redis(connection_pool=pool)
    if topology.kind == "sentinel":
        # A connection that finds the old primary demoted (READONLY) or gone is dropped,
        # and the next one asks the Sentinels where the primary is now.
        primary: redis.Redis = _sentinel(topology).master_for(
            topology.service,
            connection_pool_class=_SentinelBlockingPool,
            **bounded,
            **{**options, **topology.options},
        )
        return primary
    # Given a URL (of the first node, without the password: that is an option), redis-py
    # makes each node's pool with the class asked for; given nodes alone, a plain one.
    cluster_options = {**options, **topology.options}
    tls = cluster_options.pop("ssl", False)
    (host, port), *others = topology.hosts
    return RedisCluster(
        url=f"{'rediss' if tls else 'redis'}://{_address(host)}:{port}",
        startup_nodes=[ClusterNode(host, port) for host, port in others],
        connection_pool_class=redis.BlockingConnectionPool,
        **bounded,
        **cluster_options,
    )


def _address(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def dedicated_client(topology: Topology, options: Mapping[str, Any]) -> redis.Redis:
    """A client of one connection of its own, for a reader's blocking reads: the primary of
    a server or a Sentinel group (found again after a failover)."""
    if topology.kind == "server":
        return redis.Redis.from_url(topology.url, **options)
    if topology.kind == "sentinel":
        primary: redis.Redis = _sentinel(topology).master_for(
            topology.service, **{**options, **topology.options}
        )
        return primary
    raise ValueError("a cluster is read one node at a time: see node_client")


def node_client(
    topology: Topology, options: Mapping[str, Any], host: str, port: int
) -> redis.Redis:
    """A client of one cluster node, with a connection of its own."""
    return redis.Redis(host=host, port=port, **{**options, **topology.options})


def node_of(cluster: RedisCluster, key: str) -> tuple[str, int]:
    """The host and port of the primary that holds *key*'s slot now."""
    node = cluster.get_node_from_key(key)
    return str(node.host), int(node.port)


def refresh(cluster: RedisCluster) -> None:
    """Ask the cluster again which primary serves which slots."""
    with contextlib.suppress(RedisError, RedisClusterException):
        cluster.nodes_manager.initialize()


def primary_of(cluster: RedisCluster, key: str) -> redis.Redis:
    """The cluster's client of the primary that holds *key*'s slot now."""
    node = cluster.get_node_from_key(key)
    client: redis.Redis = cluster.get_redis_connection(node)
    return client


def _sentinel(topology: Topology) -> Sentinel:
    return Sentinel(list(topology.hosts), sentinel_kwargs=_sentinel_options(topology))


def _find_primary(client: redis.Redis) -> None:
    """Have *client*'s Sentinel pool ask where the primary is now, and leave the old one."""
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        # Not disconnect(): closing a connection that another thread is reading from
        # breaks that read with an error redis-py does not expect.
        with contextlib.suppress(RedisError):
            pool.get_master_address()


def _sentinel_options(topology: Topology) -> dict[str, Any]:
    """The options of a connection to a Sentinel."""
    options = {
        "socket_timeout": _SENTINEL_TIMEOUT,
        "socket_connect_timeout": _SENTINEL_TIMEOUT,
        "decode_responses": True,
        **topology.sentinel_options,
    }
    if topology.options.get("ssl"):
        options["ssl"] = True
    return options


class SwitchWatch:
    """Leaves a Sentinel group's old primary the moment the Sentinels announce a new one
    (``+switch-master``), in a thread (greenlet) of its own: each client's pool asks the
    Sentinels for the primary, drops its idle connections to the old one, and drops the
    others when they are released (a command under way may still finish there).

    Without it, a connection learns of a failover only when it fails: at once when the
    old primary is dead, but a primary that lives on (a switch-over, a network partition
    that heals) keeps taking writes until the Sentinels demote it, within about ten
    seconds, and whatever is written to it meanwhile is lost. With it, this process's
    next command asks the Sentinels and goes to the new primary.
    """

    def __init__(self, topology: Topology, clients: list[redis.Redis]) -> None:
        self.pid = os.getpid()
        self._topology = topology
        # The clients whose connections to drop; more may be added.
        self.clients = clients
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="channels-sentinel", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop within a second."""
        self._stopped.set()

    def _run(self) -> None:
        backoff = _SENTINEL_TIMEOUT
        while not self._stopped.is_set():
            for host, port in self._topology.hosts:
                with contextlib.suppress(RedisError, OSError):
                    self._listen(host, port)
                if self._stopped.is_set():
                    return
            # No Sentinel answers: connections still find the primary by failing.
            self._stopped.wait(backoff)

    def _listen(self, host: str, port: int) -> None:
        options = {**_sentinel_options(self._topology), "socket_timeout": None}
        sentinel = redis.Redis(host=host, port=port, **options)
        pubsub = sentinel.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe("+switch-master")
            while not self._stopped.is_set():
                message = pubsub.get_message(timeout=_SENTINEL_TIMEOUT)
                # "<service> <old host> <old port> <new host> <new port>"
                if message and str(message["data"]).split(" ")[0] == self._topology.service:
                    for client in list(self.clients):
                        _find_primary(client)
        finally:
            pubsub.close()
            sentinel.close()
