"""The Redis Streams broker: every worker on every host sees every event, with history.

One Redis stream per topic (key ``channel:<topic>``), trimmed to exactly *history*
entries, and a record of the last entry trimmed (``channel:<topic>:meta``). The entry id is
the event's position: resuming with ``Last-Event-ID`` reads the entries after it, on any
host. Ids come from one clock for all topics (``channel:state:clock``), so they order the
events of several topics as they were published. Every script below runs atomically:
reading a page of history and checking that nothing after the position is missing is one
step.

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
from redis.commands.core import Script
from redis.exceptions import RedisError

from ._base import (
    NO_EPOCH,
    Broker,
    BrokerUnavailable,
    Event,
    Fanout,
    LogRead,
    MergedReads,
    Position,
    Subscription,
    next_page,
    parse_entry_id,
)

logger = logging.getLogger(__name__)

KEY_PREFIX = "channel:"

# Keys of the broker's own, which no topic can take (a topic name has no ':').
_GENERATION_KEY = "channel:state:generation"
_CLOCK_KEY = "channel:state:clock"

# What every script starts with. KEYS[1] is the generation key, KEYS[2] the clock.
_PRELUDE = """
-- The epoch of every log: a token stored with the server's run id. A restart or a failover
-- changes the run id, and Redis cannot tell whether it lost acknowledged entries then (a
-- snapshot, appendfsync everysec, an asynchronous replica): the logs start a new epoch, and
-- a client of the old one gets a reset rather than a silent gap. FLUSHALL loses the key:
-- the same.
local function generation(candidate)
  local server = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
  local stored = redis.call('GET', KEYS[1])
  if stored then
    local epoch, run = string.match(stored, '^(%x+) (%x+)$')
    if run == server then
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

# Appends events to a log and trims it in one atomic step. KEYS: generation, clock, stream,
# trim record. ARGV: history, a fresh epoch token, then each event's name and data. Returns
# the epoch, then each event's id.
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
for index = 3, #ARGV, 2 do
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
    of other clients (``redis+sentinel://:pw@h1:26379,h2:26379/name``). Even redacted, a URL
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
        merge_reads: bool = True,
        pool_size: int = 4,
    ) -> None:
        self.url = url
        self._history = history
        self._retry_seconds = retry_seconds
        self.replay_limit = replay_limit
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
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=pool_size, timeout=10, **self._options
        )
        self._client = redis.Redis(connection_pool=pool)
        self._publish = self._client.register_script(_PUBLISH)
        self._ends = self._client.register_script(_ENDS)
        self._read_log = self._client.register_script(_READ)
        self._fanout = Fanout(feed_size=queue_size, tick=tick_seconds)
        self._hub: _Reader | None = None
        self._hub_lock = threading.Lock()

    # ------------------------------------------------------------------ publishing
    def publish_many(self, topic: str, events: Sequence[tuple[str, str | None]]) -> list[Position]:
        keys = _log_keys(topic)
        calls: list[list[str | int]] = []
        for at in range(0, len(events), _PUBLISH_COUNT):
            args: list[str | int] = [self._history, secrets.token_hex(4)]
            for data, event in events[at : at + _PUBLISH_COUNT]:
                args += (event or "", data)
            calls.append(args)
        try:
            if len(calls) == 1:
                replies = [self._publish(keys=keys, args=calls[0])]
            else:
                # All or nothing: the calls of one batch run in one transaction.
                with self._client.pipeline(transaction=True) as pipe:
                    for args in calls:
                        self._publish(keys=keys, args=args, client=pipe)
                    replies = pipe.execute()
        except RedisError as error:
            raise BrokerUnavailable(self._unreachable(error)) from error
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
        try:
            epoch, *ends = self._ends(
                keys=[_GENERATION_KEY, _CLOCK_KEY, *(KEY_PREFIX + t for t in topics)],
                args=[secrets.token_hex(4)],
            )
        except RedisError as error:
            raise BrokerUnavailable(self._unreachable(error)) from error
        return {
            topic: Position(str(epoch), parse_entry_id(str(end)))
            for topic, end in zip(topics, ends, strict=True)
        }

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
            return _read_logs(self._read_log, self._client, start, size)
        except RedisError as error:
            raise BrokerUnavailable(self._unreachable(error)) from error

    def _reader(self) -> _Reader:
        """This process's reader, started on first use (after gunicorn has forked)."""
        with self._hub_lock:
            if self._hub is None or self._hub.pid != os.getpid():
                # A dedicated connection: the reader's blocking XREAD never holds a pool slot.
                client = redis.Redis.from_url(self.url, **self._options)
                self._hub = _Reader(
                    client, self._read_log, self._fanout, self._block_ms, self._retry_seconds
                )
                self._hub.start()
            return self._hub

    # ------------------------------------------------------------------- lifecycle
    def check(self) -> None:
        try:
            self._client.ping()
        except RedisError as error:
            raise BrokerUnavailable(self._unreachable(error)) from error

    def close(self) -> None:
        with self._hub_lock:
            if self._hub is not None:
                self._hub.stop()
                self._hub = None
        self._fanout.close()
        self._fanout.end_all("the server is shutting down")
        self._client.close()

    def _unreachable(self, error: Exception) -> str:
        return f"cannot reach Redis at {redacted(self.url)}: {error}"


def _read_logs(
    script: Script, client: redis.Redis, start: Mapping[str, Position], size: int
) -> dict[str, LogRead]:
    """Each topic's log from its position in *start* on, in one round trip (the `_READ`
    script, atomic per topic)."""
    with client.pipeline(transaction=False) as pipe:
        for topic, position in start.items():
            script(
                keys=_log_keys(topic),
                args=[secrets.token_hex(4), position.entry_id, size + 1],
                client=pipe,
            )
        replies = pipe.execute()
    return {topic: _log_read(topic, reply) for topic, reply in zip(start, replies, strict=True)}


def _log_keys(topic: str) -> list[str]:
    """The keys of the publish and read scripts: the broker's own, the stream, its record."""
    return [_GENERATION_KEY, _CLOCK_KEY, KEY_PREFIX + topic, KEY_PREFIX + topic + ":meta"]


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


class _Reader:
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

    def __init__(
        self,
        client: redis.Redis,
        read_log: Script,
        fanout: Fanout,
        block_ms: int,
        retry_seconds: float,
    ) -> None:
        self.pid = os.getpid()
        self._client = client
        self._read_log = read_log
        self._fanout = fanout
        self._block_ms = block_ms
        self._retry_seconds = retry_seconds
        self._cursors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._stopped = False
        self._wake_key = f"{KEY_PREFIX}wake:{uuid.uuid4().hex}"
        self._wake_cursor = "0-0"
        self._thread = threading.Thread(target=self._run, name="channels-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the reader to stop; it does so when its current block ends (at most BLOCK)."""
        self._stopped = True
        self._wanted.set()

    def follows(self, topic: str) -> bool:
        """Whether the reader reads *topic* now (it may stop when its last stream ends)."""
        return topic in self._cursors

    def add(self, subscription: Subscription, ends: Mapping[str, Position]) -> list[str]:
        """Follow *subscription*'s topics; a topic new here is read from its end in *ends*.

        Returns the topics new here that *ends* lacks, and then registers nothing.
        """
        with self._lock:
            if missing := [
                t for t in subscription.topics if t not in self._cursors and t not in ends
            ]:
                return missing
            bases = {}
            for topic in subscription.topics:
                if topic not in self._cursors:
                    self._cursors[topic] = ends[topic].entry_id
                    bases[topic] = ends[topic]
            new = self._fanout.add(subscription, bases)
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
                followed = set(self._fanout.topics())
                for topic in set(self._cursors) - followed:
                    del self._cursors[topic]
                streams: dict[Any, Any] = {
                    KEY_PREFIX + t: c for t, c in self._cursors.items() if t in followed
                }
            if not streams:
                self._wanted.wait(timeout=self._block_ms / 1000)
                self._wanted.clear()
                answered = time.monotonic()
                continue
            streams[self._wake_key] = self._wake_cursor
            try:
                reply = cast(
                    "list[tuple[str, list[tuple[str, dict[str, str]]]]] | None",
                    self._client.xread(dict(streams), block=self._block_ms, count=1),
                )
                self._deliver(reply or [])
            except RedisError as error:
                if self._stopped:
                    return
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
                self._wanted.wait(timeout=backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_FIRST
            answered = time.monotonic()

    def _deliver(self, reply: list[tuple[str, list[tuple[str, dict[str, str]]]]]) -> None:
        """Read what the topics that woke the XREAD hold past their cursors, and fan it out.

        The XREAD only waits. The entries are read by the same atomic step as a replay's,
        because a reader that lags behind a log's trimming would otherwise read on past
        entries trimmed before it got to them. When some are gone, the topic's streams here
        are ended: their clients resume from their own ids (a replay, or a reset).
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
            return
        for topic, log in _read_logs(self._read_log, self._client, start, _READ_COUNT).items():
            # Epochs are the subscribers' business: the reader only follows entries.
            page = next_page(Position(log.epoch, start[topic].entry), log, _READ_COUNT)
            if page.reset is not None:
                self._fanout.end_topic(topic, "this server fell behind the history; reconnect")
                last = page.reset.entry_id
            elif page.events:
                # Encoded once (when first sent), shared by every local subscriber.
                self._fanout.deliver(topic, page.events, start[topic].entry)
                last = page.events[-1].position.entry_id
            else:
                continue
            with self._lock:
                if topic in self._cursors:
                    self._cursors[topic] = last

    def _fail_all(self) -> None:
        """End every local stream: they reconnect, and resume from their ids, once Redis is back."""
        with self._lock:
            self._cursors.clear()
        self._fanout.end_all("lost the connection to the broker; reconnect to resume")
