"""The Redis Streams broker: every worker on every host sees every event, with history.

One Redis stream per topic (key ``channel:<topic>``). Publishing is ``XADD`` with
approximate ``MAXLEN`` trimming, so each topic keeps at least *history* entries (Redis
trims whole blocks of about 100, so a little more). The entry id is the event's position:
resuming with ``Last-Event-ID`` reads the entries after it, on any host.

Each worker process runs ONE reader, a thread (a greenlet under gevent, whose monkey
patching turns threads into greenlets), which blocks in ``XREAD`` on the topics its local
subscribers follow and appends each entry, encoded once, to the topic's feed that all of
them read (see ``_base.Fanout``). Redis connections therefore grow with workers, not with
open streams: one blocked reader plus a small pool for commands.
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
from collections.abc import Iterable, Mapping
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
from redis.exceptions import RedisError

from .. import metrics
from ._base import (
    NO_EPOCH,
    Broker,
    BrokerUnavailable,
    Event,
    Fanout,
    Item,
    Position,
    PositionAhead,
    Reset,
    Subscription,
    merge_replay,
    parse_entry_id,
)

logger = logging.getLogger(__name__)

KEY_PREFIX = "channel:"

# Appends an event and records the log's epoch in one atomic step. A stream that does not
# exist (first publish, or Redis was flushed or restarted without persistence) gets a new
# epoch, so ids from the lost log are recognised as such instead of resuming at a wrong place.
# The meta key holds "<epoch> <first entry id ever>": a subscriber that started before the
# first entry can then tell whether anything was trimmed since.
_PUBLISH = """
local epoch = false
local meta = redis.call('GET', KEYS[2])
if meta and redis.call('EXISTS', KEYS[1]) == 1 then
  epoch = string.match(meta, '^(%S+) ')
end
if not epoch then
  epoch = ARGV[2]
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
  'epoch', epoch, 'event', ARGV[3], 'data', ARGV[4])
if not meta or not string.match(meta, '^' .. epoch .. ' ') then
  redis.call('SET', KEYS[2], epoch .. ' ' .. id)
end
return {id, epoch}
"""

# Backoff between reconnection attempts of the reader, in seconds.
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 5.0
# How long a worker's wake-up stream outlives the worker (seconds).
_WAKE_TTL = 3600
# Entries the reader takes per stream and read: a full read means more are waiting.
_READ_COUNT = 1000


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
        pool_size: int = 4,
    ) -> None:
        self.url = url
        self._history = history
        self._retry_seconds = retry_seconds
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
        self._fanout = Fanout(feed_size=queue_size, tick=tick_seconds)
        self._hub: _Reader | None = None
        self._hub_lock = threading.Lock()

    # ------------------------------------------------------------------ publishing
    def publish(self, topic: str, data: str, event: str | None = None) -> Position:
        try:
            entry_id, epoch = self._publish(
                keys=[KEY_PREFIX + topic, KEY_PREFIX + topic + ":meta"],
                args=[self._history, secrets.token_hex(4), event or "", data],
            )
        except RedisError as error:
            raise BrokerUnavailable(self._unreachable(error)) from error
        return Position(str(epoch), parse_entry_id(str(entry_id)))

    # ----------------------------------------------------------------- subscribing
    def positions(self, topics: Iterable[str]) -> dict[str, Position]:
        return {topic: state.end for topic, state in self._states(list(topics)).items()}

    def _states(self, topics: list[str]) -> dict[str, _LogState]:
        """Epoch, first entry ever, oldest and newest retained entry of each topic."""
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for topic in topics:
                    key = KEY_PREFIX + topic
                    pipe.get(key + ":meta")
                    pipe.xrange(key, count=1)
                    pipe.xrevrange(key, count=1)
                replies = pipe.execute()
        except RedisError as error:
            raise BrokerUnavailable(self._unreachable(error)) from error
        states = {}
        for index, topic in enumerate(topics):
            meta, first, last = replies[3 * index : 3 * index + 3]
            states[topic] = _LogState.of(meta, first, last)
        return states

    def subscribe(self, start: Mapping[str, Position | None]) -> Subscription:
        topics = list(start)
        states = self._states(topics)
        begin: dict[str, Position] = {}
        reset: list[str] = []
        for topic in topics:
            position, lost = states[topic].resume(topic, start[topic])
            begin[topic] = position
            if lost:
                reset.append(topic)
        subscription = Subscription(begin)
        # Register first, replay second: whatever the reader delivers from now on lands in
        # the feed past the subscription's cursor, and the replay below covers everything
        # up to this moment. Events found by both are delivered once (the subscription
        # drops what it has already passed).
        self._reader().add(subscription, {t: states[t].end.entry_id for t in topics})
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for topic in topics:
                    pipe.xrange(KEY_PREFIX + topic, min="(" + begin[topic].entry_id)
                replies = pipe.execute()
        except RedisError as error:
            subscription.close()
            raise BrokerUnavailable(self._unreachable(error)) from error
        replay = [
            _event(topic, entry_id, fields)
            for topic, entries in zip(topics, replies, strict=True)
            for entry_id, fields in entries
        ]
        backlog: list[Item] = [Reset(tuple(reset))] if reset else []
        subscription.prime(begin, [*backlog, *merge_replay(replay)])
        return subscription

    def _reader(self) -> _Reader:
        """This process's reader, started on first use (after gunicorn has forked)."""
        with self._hub_lock:
            if self._hub is None or self._hub.pid != os.getpid():
                # A dedicated connection: the reader's blocking XREAD never holds a pool slot.
                client = redis.Redis.from_url(self.url, **self._options)
                self._hub = _Reader(client, self._fanout, self._block_ms, self._retry_seconds)
                self._hub.start()
            return self._hub

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
        self._fanout.close()
        self._fanout.end_all("the server is shutting down")
        self._client.close()

    def _unreachable(self, error: Exception) -> str:
        return f"cannot reach Redis at {redacted(self.url)}: {error}"


class _LogState:
    """What a subscriber needs to know about one topic's log to start following it."""

    def __init__(
        self,
        epoch: str,
        first_ever: tuple[int, int],
        first: tuple[int, int] | None,
        last: tuple[int, int] | None,
    ) -> None:
        self.epoch = epoch
        self.first_ever = first_ever
        self.first = first
        self.last = last

    @classmethod
    def of(cls, meta: str | None, first: list[Any], last: list[Any]) -> _LogState:
        if not last or meta is None:
            return cls(NO_EPOCH, (0, 0), None, None)
        epoch, _, first_ever = meta.partition(" ")
        return cls(
            epoch,
            parse_entry_id(first_ever),
            parse_entry_id(first[0][0]),
            parse_entry_id(last[0][0]),
        )

    @property
    def end(self) -> Position:
        return Position.start() if self.last is None else Position(self.epoch, self.last)

    def resume(  # noqa: PLR0911  (one return per case, each explained)
        self, topic: str, given: Position | None
    ) -> tuple[Position, bool]:
        """Where to start for a subscriber at *given*, and whether events were lost."""
        if given is None:
            return self.end, False
        if self.last is None or self.first is None:
            # No log: fine for a position taken before the first entry; any other was in a
            # log that has been lost (flushed, or Redis restarted without persistence).
            return self.end, given.epoch != NO_EPOCH
        if given.epoch == NO_EPOCH:
            # Subscribed before the first entry: replay all, unless some were trimmed since.
            if self.first == self.first_ever:
                return Position(self.epoch, (0, 0)), False
            return self.end, True
        if given.epoch != self.epoch:
            return self.end, True
        if given.entry > self.last:
            raise PositionAhead(f"{topic} has no entry {given.entry_id}")
        if given.entry < self.first:
            # Trimmed: the history after this position is no longer complete.
            return self.end, True
        return given, False


def _event(topic: str, entry_id: str, fields: Mapping[str, str]) -> Event:
    position = Position(fields.get("epoch", NO_EPOCH), parse_entry_id(entry_id))
    return Event(topic, position, fields.get("data", ""), fields.get("event") or None)


class _Reader:
    """The worker's one reader: ``XREAD BLOCK`` on every followed topic, fanned out locally.

    New topics wake it through a stream of its own, so a first subscriber does not wait for
    the current block to end. When a read fails, the reader retries with backoff and keeps
    its streams open (with heartbeats) for up to *retry_seconds* of silence from Redis:
    one slow read, or a short outage, ends no stream and loses no event, and does not send
    every client of every worker back at the same moment. Only when Redis stays out of
    reach longer are the streams ended (their clients resume from their ids), and it goes
    on retrying, so delivery comes back without restarting the app.
    """

    def __init__(
        self, client: redis.Redis, fanout: Fanout, block_ms: int, retry_seconds: float
    ) -> None:
        self.pid = os.getpid()
        self._client = client
        self._fanout = fanout
        self._block_ms = block_ms
        self._retry_seconds = retry_seconds
        self._cursors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._stopped = False
        self._wake_key = f"{KEY_PREFIX}wake:{uuid.uuid4().hex}"
        self._wake_cursor = "0-0"
        # Whether the last read got every entry Redis had, and when one last did.
        self._caught_up = True
        self._caught_up_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="channels-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the reader to stop; it does so when its current block ends (at most BLOCK)."""
        self._stopped = True
        self._wanted.set()

    def lag(self) -> float:
        """Seconds since the reader last had read every entry Redis had; 0 while it has.

        A Redis that stalls shows once the blocked read times out (the block + 5 s).
        """
        return 0.0 if self._caught_up else time.monotonic() - self._caught_up_at

    def _note(self, *, caught_up: bool) -> None:
        """Whether the last read (or wait) left nothing unread, for `lag` and the metrics."""
        if caught_up:
            self._caught_up_at = time.monotonic()
        self._caught_up = caught_up
        metrics.reader_read(self.lag())

    def add(self, subscription: Subscription, ends: Mapping[str, str]) -> None:
        """Follow *subscription*'s topics; a topic new here is read from its *ends* entry."""
        with self._lock:
            for topic in subscription.topics:
                self._cursors.setdefault(topic, ends[topic])
            new = self._fanout.add(subscription)
        self._wanted.set()
        if new:
            try:
                with self._client.pipeline(transaction=False) as pipe:
                    pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1)
                    pipe.expire(self._wake_key, _WAKE_TTL)
                    pipe.execute()
            except RedisError:
                pass  # the reader notices the failure itself and ends the streams

    def _run(self) -> None:
        try:
            self._read()
        finally:
            self._client.close()

    def _read(self) -> None:
        backoff = _BACKOFF_FIRST
        # When Redis last answered the reader, or the reader last had nothing to ask it.
        answered = time.monotonic()
        # After a failed read, Redis may be back without what the reader read last.
        check_cursors = False
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
                self._note(caught_up=True)  # nothing to read
                continue
            streams[self._wake_key] = self._wake_cursor
            try:
                if check_cursors:
                    check_cursors = False
                    if self._lost_cursors(streams):
                        self._fail_all()
                        continue
                reply = cast(
                    "list[tuple[str, list[tuple[str, dict[str, str]]]]] | None",
                    self._client.xread(dict(streams), block=self._block_ms, count=_READ_COUNT),
                )
            except RedisError as error:
                if self._stopped:
                    return
                metrics.reader_reconnecting()
                self._note(caught_up=False)
                check_cursors = True
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
            self._note(caught_up=all(len(entries) < _READ_COUNT for _, entries in reply or []))
            for key, entries in reply or []:
                if key == self._wake_key:
                    self._wake_cursor = entries[-1][0]
                    continue
                topic = key.removeprefix(KEY_PREFIX)
                # Encoded once here, shared by every local subscriber of the topic.
                self._fanout.deliver(topic, [_event(topic, i, fields) for i, fields in entries])
                with self._lock:
                    if topic in self._cursors:
                        self._cursors[topic] = entries[-1][0]

    def _lost_cursors(self, streams: Mapping[str, str]) -> bool:
        """Whether Redis came back without an entry the reader had read (or `RedisError`).

        A restart from an older snapshot, or a failover to a replica that lagged, can bring
        back a log without its last entries: reading on after a position the log no longer
        has would skip, without a word, what is published up to that position again. An
        entry that is still there proves that everything after it is (logs are trimmed
        from the front). Otherwise the streams are ended and their clients resume from
        their own ids, which the subscription checks against the log as it is now.
        """
        keys = [k for k, cursor in streams.items() if k != self._wake_key and cursor != "0-0"]
        with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.xrange(key, min=streams[key], max=streams[key], count=1)
            replies = pipe.execute()
        lost = [key for key, reply in zip(keys, replies, strict=True) if not reply]
        if lost:
            logger.warning(
                "channel reader: Redis came back without the last entry read of %s; "
                "streams ended, to resume from their ids",
                ", ".join(key.removeprefix(KEY_PREFIX) for key in lost),
            )
        return bool(lost)

    def _fail_all(self) -> None:
        """End every local stream: they reconnect, and resume from their ids, once Redis is back."""
        with self._lock:
            self._cursors.clear()
        self._fanout.end_all("lost the connection to the broker; reconnect to resume")
