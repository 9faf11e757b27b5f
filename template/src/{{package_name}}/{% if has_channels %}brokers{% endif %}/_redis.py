"""The Redis Streams broker: every worker on every host sees every event, with history.

One Redis stream per topic (key ``channel:<topic>``), trimmed to exactly *history*
entries, and a record of the last entry trimmed (``channel:<topic>:meta``). The entry id is
the event's position: resuming with ``Last-Event-ID`` reads the entries after it, on any
host. Ids come from one clock for all topics (``channel:state:clock``), so they order the
events of several topics as they were published. Every script below runs atomically:
reading a page of history and checking that nothing after the position is missing is one
step. In a Redis Cluster each topic keeps its keys in one hash slot, with an epoch and a
clock of its own (see `Keys`), and each worker reads every shard it needs (``_cluster``).

Each worker process runs ONE reader, a thread (a greenlet under gevent, whose monkey
patching turns threads into greenlets), which waits in ``XREAD`` on the topics its local
subscribers follow, reads their new entries with the same atomic check as a replay, and
appends each entry to the topic's feed that all of them read (see ``_base.Fanout``), where
it is encoded once. Redis connections therefore grow with workers, not with open streams:
one blocked reader plus a small pool for commands.
Redis pub/sub could not do this job: it keeps no history, so a reconnecting client's
missed events are gone and ``Last-Event-ID`` cannot be honoured.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import (
    AskError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    RedisError,
)

from .. import metrics
from . import _topology
from ._base import (
    NO_EPOCH,
    Broker,
    BrokerUnavailable,
    Event,
    Fanout,
    Follower,
    LogRead,
    MergedReads,
    NotReplicated,
    Position,
    ReadProgress,
    Subscription,
    hand_over,
    parse_entry_id,
)
from ._cluster import ClusterReader

logger = logging.getLogger(__name__)

KEY_PREFIX = "channel:"

# Keys of the broker's own on one server, which no topic can take (a topic name has no ':').
_GENERATION_KEY = "channel:state:generation"
_CLOCK_KEY = "channel:state:clock"


class Keys:
    """Where each topic's log and the broker's own records live.

    On one server (or the primary of a Sentinel group) every topic shares one epoch and one
    id clock, ``channel:state:*``: ids order the events of all topics as they were
    published. A Redis Cluster runs a script on the keys of one hash slot only (anything
    else is a ``CROSSSLOT`` error), so there each topic keeps all of its keys in the slot of
    its hash tag, ``channel:{<topic>}``, with an epoch and a clock of its own: ids order the
    events of a topic exactly, and those of several topics by the clocks of their shards.
    The publish script also announces each event on the topic's shard channel
    (``channel:{<topic>}:bell``, ``SPUBLISH``), which a worker's reader of that shard waits on.
    """

    def __init__(self, *, cluster: bool) -> None:
        self.cluster = cluster

    def stream(self, topic: str) -> str:
        return f"{KEY_PREFIX}{{{topic}}}" if self.cluster else KEY_PREFIX + topic

    def log(self, topic: str) -> list[str]:
        """The keys of the publish and read scripts: epoch, clock, stream, trim record."""
        stream = self.stream(topic)
        if self.cluster:
            return [f"{stream}:generation", f"{stream}:clock", stream, f"{stream}:meta"]
        return [_GENERATION_KEY, _CLOCK_KEY, stream, f"{stream}:meta"]

    def bell(self, topic: str) -> str:
        """The shard channel announcing *topic*'s events in a cluster ('' on one server)."""
        return f"{self.stream(topic)}:bell" if self.cluster else ""

    def topic_of_bell(self, bell: str) -> str:
        """The topic whose `bell` this is."""
        return bell.removeprefix(KEY_PREFIX + "{").removesuffix("}:bell")


# What every script starts with. KEYS[1] is the generation key, KEYS[2] the clock.
_PRELUDE = """
-- The epoch of every log: a token stored with the server's run id and replication id. A
-- restart changes the run id, a failover the replication id of the promoted replica and of
-- the old primary (which, once it follows the new one, holds its data set: a record naming
-- the old primary's run id, without its last writes). Redis cannot tell whether acknowledged
-- entries were lost then (a snapshot, appendfsync everysec, an asynchronous replica): the
-- logs start a new epoch, and a client of the old one gets a reset rather than a silent gap.
-- FLUSHALL loses the key: the same.
local function generation(candidate)
  local info = redis.call('INFO', 'server', 'replication')
  local run_id = string.match(info, 'run_id:(%x+)')
  local server = run_id .. ' ' .. string.match(info, 'master_replid:(%x+)')
  local stored = redis.call('GET', KEYS[1])
  if stored then
    local epoch, run, history = string.match(stored, '^(%x+) (%x+) ?(%x*)$')
    if run and run .. ' ' .. history == server then
      return epoch
    end
    if run and history == '' and server:sub(1, #run + 1) == run .. ' ' then
      -- Written by a version that stored the run id alone, on this very server.
      redis.call('SET', KEYS[1], epoch .. ' ' .. server)
      return epoch
    end
  end
  redis.call('SET', KEYS[1], candidate .. ' ' .. server)
  return candidate
end

-- The id of the last entry trimmed from the front of a log ('0-0': none yet), and whether
-- the record must be written.
local function trimmed(stream, record_key)
  local record = redis.call('GET', record_key)
  if record and not string.match(record, '^%d+%-%d+$') then
    record = false  -- written by an older version: no trim record
  end
  if redis.call('EXISTS', stream) == 0 then
    if record then
      -- The log was deleted: every id handed out so far went with it.
      return redis.call('GET', KEYS[2]) or '0-0', true
    end
    return '0-0', true
  end
  if record then
    return record, false
  end
  -- A log with no record: its oldest entry stands for an unknown boundary, so that no
  -- position before it can resume without a reset.
  return redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1][1], true
end
"""

# Appends events to a log and trims it in one atomic step, and in a cluster rings the topic's
# shard channel. KEYS: generation, clock, stream, trim record. ARGV: history, a fresh epoch
# token, the topic's shard channel ('' but in a cluster), then each event's name and data.
# Returns the epoch, then each event's id.
_PUBLISH = (
    _PRELUDE
    + """
local epoch = generation(ARGV[2])
local boundary, changed = trimmed(KEYS[3], KEYS[4])
-- After every id handed out on any topic: ids order all topics' events.
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local seq = 0
local clock = redis.call('GET', KEYS[2])
if clock then
  local clock_ms, clock_seq = string.match(clock, '^(%d+)-(%d+)$')
  if tonumber(clock_ms) >= ms then
    ms, seq = tonumber(clock_ms), tonumber(clock_seq) + 1
  end
end
local published = {epoch}
for index = 4, #ARGV, 2 do
  local fields = {'epoch', epoch, 'event', ARGV[index], 'data', ARGV[index + 1]}
  local id = redis.pcall('XADD', KEYS[3], string.format('%.0f-%.0f', ms, seq), unpack(fields))
  if type(id) == 'table' then
    -- The stream has a later id than the clock (the clock key was lost): Redis picks one,
    -- and the next events follow it.
    id = redis.call('XADD', KEYS[3], '*', unpack(fields))
    local id_ms, id_seq = string.match(id, '^(%d+)-(%d+)$')
    ms, seq = tonumber(id_ms), tonumber(id_seq)
  end
  published[#published + 1] = id
  seq = seq + 1
end
local excess = redis.call('XLEN', KEYS[3]) - tonumber(ARGV[1])
if excess > 0 then
  local gone = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', excess)
  boundary, changed = gone[#gone][1], true
  redis.call('XTRIM', KEYS[3], 'MAXLEN', ARGV[1])
end
if changed then
  redis.call('SET', KEYS[4], boundary)
end
redis.call('SET', KEYS[2], published[#published])
if ARGV[3] ~= '' then
  redis.call('SPUBLISH', ARGV[3], published[#published])
end
return published
"""
)

# The end of each log. KEYS: generation, clock, then one stream per topic. ARGV: a fresh
# epoch token. Returns the epoch, then each stream's newest id ('0-0': none).
_ENDS = (
    _PRELUDE
    + """
local ends = {generation(ARGV[1])}
for index = 3, #KEYS do
  local newest = redis.call('XREVRANGE', KEYS[index], '+', '-', 'COUNT', 1)
  ends[#ends + 1] = newest[1] and newest[1][1] or '0-0'
end
return ends
"""
)

# A page of one log from a position on, with what `next_page` needs to check it. KEYS:
# generation, clock, stream, trim record. ARGV: a fresh epoch token, the position's entry
# id, how many entries.
_READ = (
    _PRELUDE
    + """
local epoch = generation(ARGV[1])
local boundary = trimmed(KEYS[3], KEYS[4])
local entries = redis.call('XRANGE', KEYS[3], ARGV[2], '+', 'COUNT', ARGV[3])
local earlier = 0
if ARGV[2] ~= '0-0' and (not entries[1] or entries[1][1] ~= ARGV[2]) then
  earlier = #redis.call('XREVRANGE', KEYS[3], '(' .. ARGV[2], '-', 'COUNT', 1)
end
local newest = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
return {epoch, newest[1] and newest[1][1] or '0-0', boundary, earlier, entries}
"""
)

# Entries the reader reads from a topic at a time.
_READ_COUNT = 1000
# Events published by one script call, at most: a longer batch takes several calls, in one
# transaction, so that no call holds Redis for long.
_PUBLISH_COUNT = 1000
# Backoff between reconnection attempts of the reader, in seconds.
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 5.0
# How long a worker's wake-up stream outlives the worker (seconds).
_WAKE_TTL = 3600


# Query parameters that carry a secret (redis-py reads ``password``; other clients name
# theirs ``sentinel_password``, ``token``, ...).
_SECRET_PARAMETER = re.compile(r"password|secret|token", re.IGNORECASE)


def redacted(url: str) -> str:
    """*url* with every password in it replaced by ``***``, for logs and start-up errors.

    It covers the forms redis-py accepts (``redis://user:pw@host``, ``redis://:pw@host``,
    ``?password=pw``, ``rediss://``, ``unix:///path?password=pw``) and the multi-host forms
    of Sentinel and Cluster (``redis+sentinel://:pw@h1:26379,h2:26379/name?
    sentinel_password=pw``, ``redis+cluster://:pw@n1:7000,n2:7001``). Even redacted, a URL
    is for the operator: clients are never shown the broker's address.
    """
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        return "<a URL that cannot be parsed>"
    # The last "@" ends the user part: a password may contain "@", a host may not.
    userinfo, at, hosts = netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if at and colon:
        url = url.replace(netloc, f"{user}:***@{hosts}", 1)
    # Edited as text, not rebuilt from its parts: "unix:///path" keeps its empty host.
    head, mark, rest = url.partition("?")
    query, hash_mark, fragment = rest.partition("#")
    pairs = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        secret = equals and _SECRET_PARAMETER.search(unquote(name))
        pairs.append(f"{name}=***" if secret else pair)
    return head + mark + "&".join(pairs) + hash_mark + fragment


class RedisBroker(Broker):
    """Redis Streams behind the broker interface; see the module docstring."""

    def __init__(  # noqa: PLR0913  (each a setting of its own)
        self,
        url: str,
        *,
        history: int,
        block_seconds: float,
        queue_size: int,
        tick_seconds: float,
        retry_seconds: float,
        replay_limit: int,
        publish_replicas: int = 0,
        publish_wait_seconds: float = 1.0,
        merge_reads: bool = True,
        pool_size: int = 4,
    ) -> None:
        self.url = url
        self._topology = _topology.parse(url)
        self._keys = Keys(cluster=self._topology.cluster)
        self._history = history
        self._retry_seconds = retry_seconds
        self.replay_limit = replay_limit
        # Durable publishing: a publish returns once this many replicas have the event.
        self._replicas = publish_replicas
        self._wait_ms = max(1, int(publish_wait_seconds * 1000))
        self.merge_reads = merge_reads
        self._merged = MergedReads()
        # The reader's XREAD BLOCK must end before the socket times out, or every quiet
        # period would look like a dead connection (redis-py 8 defaults socket_timeout to 5 s).
        self._block_ms = max(1, int(block_seconds * 1000))
        self._options: dict[str, Any] = {
            "socket_timeout": block_seconds + 5.0,
            "socket_connect_timeout": 5.0,
            "decode_responses": True,
        }
        # A bounded pool: a burst of subscribers waits for a connection instead of opening
        # one each. Under gevent its queue is gevent's (the worker patches the stdlib).
        try:
            self._client = _topology.command_client(self._topology, self._options, pool_size)
        except (RedisError, RedisClusterException) as error:
            # A cluster client asks its nodes for the slot map as it is made (the others
            # connect on their first command).
            raise BrokerUnavailable(self._unreachable(error)) from error
        self._publish = self._client.register_script(_PUBLISH)
        self._ends = self._client.register_script(_ENDS)
        self._read_log = self._client.register_script(_READ)
        self._fanout = Fanout(feed_size=queue_size, tick=tick_seconds)
        self._hub: _Reader | ClusterReader | None = None
        self._watch: _topology.SwitchWatch | None = None
        self._watch_lock = threading.Lock()
        self._hub_lock = threading.Lock()

    # ------------------------------------------------------------------ publishing
    def publish_many(self, topic: str, events: Sequence[tuple[str, str | None]]) -> list[Position]:
        self._watch_switches()
        keys = self._keys.log(topic)
        calls: list[tuple[Script, list[str], list[Any]]] = []
        for at in range(0, len(events), _PUBLISH_COUNT):
            args: list[Any] = [self._history, secrets.token_hex(4), self._keys.bell(topic)]
            for data, event in events[at : at + _PUBLISH_COUNT]:
                args += (event or "", data)
            calls.append((self._publish, keys, args))
        client: redis.Redis | RedisCluster = self._client
        if self._replicas and isinstance(client, RedisCluster):
            # The node that holds the topic: WAIT has no key to route it by.
            client = _topology.primary_of(client, keys[2])
        try:
            # All or nothing: the calls of one batch run in one transaction.
            replies = _run_scripts(
                client,
                calls,
                wait=(self._replicas, self._wait_ms) if self._replicas else None,
                transaction=len(calls) > 1,
            )
        except RedisError as error:
            raise BrokerUnavailable(self._unreachable(error)) from error
        if self._replicas:
            *replies, copies = replies
            if int(copies) < self._replicas:
                raise NotReplicated(
                    f"only {copies} of the {self._replicas} replicas asked for had the "
                    f"events after {self._wait_ms} ms: they are on the primary, and may be "
                    "delivered, but a failover could lose them"
                )
        return [
            Position(str(epoch), parse_entry_id(str(entry_id)))
            for epoch, *ids in replies
            for entry_id in ids
        ]

    # ----------------------------------------------------------------- subscribing
    def positions(self, topics: Iterable[str]) -> dict[str, Position]:
        topics = list(topics)
        if not topics:
            return {}
        # The topics that share an epoch (all of them on one server; each alone in a
        # cluster) are read by one script, every script in one round trip.
        groups: dict[str, list[str]] = {}
        for topic in topics:
            groups.setdefault(self._keys.log(topic)[0], []).append(topic)
        calls = []
        for group in groups.values():
            generation, clock, *_ = self._keys.log(group[0])
            streams = [self._keys.stream(topic) for topic in group]
            calls.append((self._ends, [generation, clock, *streams], [secrets.token_hex(4)]))
        try:
            replies = _run_scripts(self._client, calls)
        except RedisError as error:
            raise BrokerUnavailable(self._unreachable(error)) from error
        found = {}
        for group, (epoch, *ends) in zip(groups.values(), replies, strict=True):
            for topic, end in zip(group, ends, strict=True):
                found[topic] = Position(str(epoch), parse_entry_id(str(end)))
        return found

    def subscribe(self, start: Mapping[str, Position | None]) -> Subscription:
        reader = self._reader()
        # The end of a log is needed for a topic without a position, and for one this
        # worker's reader does not follow yet (it reads on from there). A reconnecting
        # client of a followed topic costs no round trip here.
        ends = self.positions(
            t
            for t, position in start.items()
            if position is None or not self.merge_reads or not reader.follows(t)
        )
        while True:
            subscription = Subscription(
                {topic: position or ends[topic] for topic, position in start.items()},
                self._replay(start),
            )
            # Registered now, replayed later (while the stream is sent): whatever the reader
            # delivers from now on lands in the feed past the subscription's cursor, and the
            # replay reads up to a moment after this one. Events found by both are sent once
            # (the subscription drops what it has already passed).
            missing = reader.add(subscription, ends)
            if not missing:
                return subscription
            # The reader stopped following a topic meanwhile (its last stream ended).
            ends.update(self.positions(missing))

    def _read(self, start: Mapping[str, Position], size: int) -> dict[str, LogRead]:
        try:
            return _read_logs(self._read_log, self._client, self._keys, start, size)
        except RedisError as error:
            raise BrokerUnavailable(self._unreachable(error)) from error

    def _reader(self) -> _Reader | ClusterReader:
        """This process's reader, started on first use (after gunicorn has forked)."""
        with self._hub_lock:
            if self._hub is None or self._hub.pid != os.getpid():
                self._hub = self._new_reader()
                self._hub.start()
            return self._hub

    def _watch_switches(self, *clients: redis.Redis) -> None:
        """In this process, follow a Sentinel group's new primary at once with *clients* and
        the command pool (see `_topology.SwitchWatch`); started on first use, after a fork."""
        if self._topology.kind != "sentinel" or not isinstance(self._client, redis.Redis):
            return
        with self._watch_lock:
            if self._watch is None or self._watch.pid != os.getpid():
                self._watch = _topology.SwitchWatch(self._topology, [self._client])
                self._watch.start()
            self._watch.clients += clients

    def _new_reader(self) -> _Reader | ClusterReader:
        client = self._client
        if isinstance(client, RedisCluster):
            cluster = client

            def read(start: Mapping[str, Position]) -> dict[str, LogRead]:
                return _read_logs(self._read_log, cluster, self._keys, start, _READ_COUNT)

            return ClusterReader(
                cluster,
                lambda host, port: _topology.node_client(self._topology, self._options, host, port),
                read,
                self._fanout,
                self._keys,
                read_count=_READ_COUNT,
                retry_seconds=self._retry_seconds,
            )
        # A dedicated connection: the reader's blocking XREAD never holds a pool slot.
        client = _topology.dedicated_client(self._topology, self._options)
        self._watch_switches(client)
        return _Reader(
            client,
            self._read_log,
            self._keys,
            self._fanout,
            self._block_ms,
            self._retry_seconds,
        )

    # ------------------------------------------------------------------- lifecycle
    def check(self) -> None:
        try:
            self._client.ping()
        except RedisError as error:
            raise BrokerUnavailable(self._unreachable(error)) from error

    def lag(self) -> float:
        hub = self._hub
        return hub.lag() if hub is not None and hub.pid == os.getpid() else 0.0

    def close(self) -> None:
        with self._hub_lock:
            if self._hub is not None:
                self._hub.stop()
                self._hub = None
        with self._watch_lock:
            if self._watch is not None:
                self._watch.stop()
                self._watch = None
        self._fanout.close()
        self._fanout.end_all("the server is shutting down")
        self._client.close()

    def _unreachable(self, error: Exception) -> str:
        return f"cannot reach Redis at {redacted(self.url)}: {error}"


def _read_logs(
    script: Script,
    client: redis.Redis | RedisCluster,
    keys: Keys,
    start: Mapping[str, Position],
    size: int,
) -> dict[str, LogRead]:
    """Each topic's log from its position in *start* on, in one round trip (per node of a
    cluster): the `_READ` script, atomic per topic."""
    calls = [
        (script, keys.log(topic), [secrets.token_hex(4), position.entry_id, size + 1])
        for topic, position in start.items()
    ]
    replies = _run_scripts(client, calls)
    return {topic: _log_read(topic, reply) for topic, reply in zip(start, replies, strict=True)}


def _run_scripts(
    client: redis.Redis | RedisCluster,
    calls: list[tuple[Script, list[str], list[Any]]],
    *,
    wait: tuple[int, int] | None = None,
    transaction: bool = False,
) -> list[Any]:
    """Run script calls in one round trip (per node of a cluster), then ``WAIT`` if asked;
    with *transaction*, in one ``MULTI``/``EXEC`` (of one node: the keys of one topic).

    A server that lacks a script (one just restarted, or failed over to) gets them
    loaded, and the calls are sent again: reads may run twice, and a publish is sent
    alone, so no event is ever added twice.
    """
    if isinstance(client, RedisCluster):
        return _run_on_shards(client, calls, transaction=transaction)
    for attempt in (1, 2):
        # MULTI and EXEC by hand: WAIT must follow the EXEC on the same connection (it
        # counts that connection's writes), and inside a transaction it would not wait.
        with client.pipeline(transaction=False) as pipe:
            if transaction:
                pipe.execute_command("MULTI")
            for script, keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            if transaction:
                pipe.execute_command("EXEC")
            if wait is not None:
                pipe.wait(*wait)
            try:
                replies = pipe.execute()
                if not transaction:
                    return replies
                # OK, QUEUED for each call, then what EXEC ran (each a reply or an error).
                ran = replies[len(calls) + 1]
                if failed := [reply for reply in ran if isinstance(reply, Exception)]:
                    raise failed[0]
                return [*ran, *replies[len(calls) + 2 :]]
            except NoScriptError:
                if attempt == 2:
                    raise
        for script in {script for script, _, _ in calls}:
            client.script_load(script.script)
    raise AssertionError("unreachable")


def _run_on_shards(
    cluster: RedisCluster,
    calls: list[tuple[Script, list[str], list[Any]]],
    *,
    transaction: bool = False,
) -> list[Any]:
    """`_run_scripts` on a cluster: each primary's calls in one round trip of its own.

    Not redis-py's cluster pipeline: it asks a server for the keys of every ``EVALSHA``
    (``COMMAND GETKEYS``) on a second connection of the same small pool, a round trip more
    per call, and a wait for a connection that, under load, only the pool's timeout ends.
    A slot found moved (a failover or a resharding in the cluster) refreshes the map of
    slots: the caller's retry goes to the new primary.
    """
    shards: dict[int, tuple[redis.Redis, list[int]]] = {}
    for index, (_, keys, _) in enumerate(calls):
        primary = _topology.primary_of(cluster, keys[2])
        shards.setdefault(id(primary), (primary, []))[1].append(index)
    replies: list[Any] = [None] * len(calls)
    for primary, indexes in shards.values():
        try:
            found = _run_scripts(
                primary, [calls[index] for index in indexes], transaction=transaction
            )
        except (MovedError, AskError):
            _topology.refresh(cluster)
            raise
        for index, reply in zip(indexes, found, strict=True):
            replies[index] = reply
    return replies


def _log_read(topic: str, reply: list[Any]) -> LogRead:
    epoch, last, trimmed, earlier, entries = reply
    return LogRead(
        epoch=str(epoch),
        last=parse_entry_id(str(last)),
        trimmed=parse_entry_id(str(trimmed)),
        earlier=bool(earlier),
        entries=[_event(topic, entry_id, _fields(values)) for entry_id, values in entries],
    )


def _fields(values: list[str]) -> dict[str, str]:
    """A script's reply lists an entry's fields and values flat: pair them."""
    return dict(zip(values[::2], values[1::2], strict=True))


def _event(topic: str, entry_id: str, fields: Mapping[str, str]) -> Event:
    position = Position(fields.get("epoch", NO_EPOCH), parse_entry_id(entry_id))
    return Event(topic, position, fields.get("data", ""), fields.get("event") or None)


class _Reader(Follower):
    """The worker's one reader: ``XREAD BLOCK`` on every followed topic, fanned out locally.

    New topics wake it through a stream of its own, so a first subscriber does not wait for
    the current block to end. When a topic's log was trimmed past its cursor (the reader
    fell behind), or lost entries it had read, that topic's local streams are ended.
    When a read fails, the reader retries with backoff and keeps
    its streams open (with heartbeats) for up to *retry_seconds* of silence from Redis:
    one slow read, or a short outage, ends no stream and loses no event, and does not send
    every client of every worker back at the same moment. Only when Redis stays out of
    reach longer are the streams ended (their clients resume from their ids), and it goes
    on retrying, so delivery comes back without restarting the app.
    """

    def __init__(  # noqa: PLR0913, PLR0917  (each a part of its own)
        self,
        client: redis.Redis,
        read_log: Script,
        keys: Keys,
        fanout: Fanout,
        block_ms: int,
        retry_seconds: float,
    ) -> None:
        super().__init__(fanout)
        self.pid = os.getpid()
        self._client = client
        self._read_log = read_log
        self._keys = keys
        self._block_ms = block_ms
        self._retry_seconds = retry_seconds
        self._wanted = threading.Event()
        self._stopped = False
        # Set by stop() only: a backoff waits on it, not on `_wanted`, which every new
        # subscription sets (a reconnecting crowd would turn the backoff into a busy loop).
        self._stopping = threading.Event()
        self._wake_key = f"{KEY_PREFIX}wake:{uuid.uuid4().hex}"
        self._wake_cursor = "0-0"
        self._progress = ReadProgress()
        self._thread = threading.Thread(target=self._run, name="channels-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the reader to stop; it does so when its current block ends (at most BLOCK)."""
        self._stopped = True
        self._stopping.set()
        self._wanted.set()

    def lag(self) -> float:
        """Seconds since the reader last had read every entry Redis had; 0 while it has.

        A Redis that stalls shows once the blocked read times out (the block + 5 s).
        """
        return self._progress.lag()

    def _note(self, *, caught_up: bool) -> None:
        """Whether the last read (or wait) left nothing unread, for `lag` and the metrics."""
        self._progress.note(caught_up=caught_up)
        metrics.reader_read(self.lag())

    def add(self, subscription: Subscription, ends: Mapping[str, Position]) -> list[str]:
        """Follow *subscription*'s topics; a topic new here is read from its end in *ends*.

        Returns the topics new here that *ends* lacks, and then registers nothing.
        """
        missing, new = self._register(subscription, ends)
        if missing:
            return missing
        self._wanted.set()
        if new:
            try:
                with self._client.pipeline(transaction=False) as pipe:
                    pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1)
                    pipe.expire(self._wake_key, _WAKE_TTL)
                    pipe.execute()
            except RedisError:
                pass  # the reader notices the failure itself and ends the streams
        return []

    def _run(self) -> None:
        try:
            self._read()
        finally:
            self._client.close()

    def _read(self) -> None:
        backoff = _BACKOFF_FIRST
        # When Redis last answered the reader, or the reader last had nothing to ask it.
        answered = time.monotonic()
        while not self._stopped:
            with self._lock:
                # Read under the lock that add() holds while it registers a subscription:
                # taken before, a topic added meanwhile would lose its cursor here and
                # never be read.
                followed = set(self.fanout.topics())
                for topic in set(self._cursors) - followed:
                    del self._cursors[topic]
                streams: dict[Any, Any] = {
                    self._keys.stream(t): c for t, c in self._cursors.items() if t in followed
                }
            if not streams:
                self._wanted.wait(timeout=self._block_ms / 1000)
                self._wanted.clear()
                answered = time.monotonic()
                self._note(caught_up=True)  # nothing to read
                continue
            streams[self._wake_key] = self._wake_cursor
            try:
                reply = cast(
                    "list[tuple[str, list[tuple[str, dict[str, str]]]]] | None",
                    self._client.xread(dict(streams), block=self._block_ms, count=1),
                )
                caught_up = self._deliver(reply or [])
            except RedisError as error:
                if self._stopped:
                    return
                metrics.reader_reconnecting()
                self._note(caught_up=False)
                silent = time.monotonic() - answered
                if silent < self._retry_seconds:
                    logger.warning(
                        "channel reader: no answer from Redis for %.1f s (%s); streams kept "
                        "open, retrying in %.1f s",
                        silent,
                        error,
                        backoff,
                    )
                else:
                    logger.warning(
                        "channel reader: no answer from Redis for %.1f s (%s); streams ended, "
                        "retrying in %.1f s",
                        silent,
                        error,
                        backoff,
                    )
                    self._fail_all()
                self._stopping.wait(timeout=backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_FIRST
            answered = time.monotonic()
            self._note(caught_up=caught_up)

    def _deliver(self, reply: list[tuple[str, list[tuple[str, dict[str, str]]]]]) -> bool:
        """Read what the topics that woke the XREAD hold past their cursors, and fan it out;
        True when that was all they held (a full page means more are waiting).

        The XREAD only waits: the entries are read with the atomic check of a replay (see
        `hand_over`).
        """
        woken = []
        for key, entries in reply:
            if key == self._wake_key:
                self._wake_cursor = entries[-1][0]
            else:
                woken.append(key.removeprefix(KEY_PREFIX))
        with self._lock:
            cursors = {topic: self._cursors[topic] for topic in woken if topic in self._cursors}
        start = {topic: Position(NO_EPOCH, parse_entry_id(c)) for topic, c in cursors.items()}
        if not start:
            return True
        logs = _read_logs(self._read_log, self._client, self._keys, start, _READ_COUNT)
        moved, caught_up = hand_over(self.fanout, start, logs, _READ_COUNT)
        with self._lock:
            for topic, last in moved.items():
                if topic in self._cursors:
                    self._cursors[topic] = last
        return caught_up

    def _fail_all(self) -> None:
        """End every local stream: they reconnect, and resume from their ids, once Redis is back."""
        with self._lock:
            self._cursors.clear()
        self.fanout.end_all("lost the connection to the broker; reconnect to resume")
