"""The worker's reader of a Redis Cluster: one per shard it needs, not one per topic.

A blocking ``XREAD`` on several streams must name keys of one hash slot (else
``CROSSSLOT``), even when they are on the same node, and each topic has a slot of its own:
waiting in ``XREAD`` would take a connection per topic. So in a cluster the publish script
announces each event on the topic's shard channel (``SPUBLISH channel:{<topic>}:bell``,
same slot), and each worker keeps, per shard it needs, one connection subscribed
(``SSUBSCRIBE``) to the channels of the topics its subscribers follow there, in one thread
(a greenlet under gevent). An announcement only wakes the reader: it then reads the topic's
log past its cursor with the atomic check of a replay and hands the entries to the feed
(`hand_over`), as the reader of one server does. Announcements are not kept, so whatever
the reader may have missed (it was just subscribing, or its connection broke) is read from
the log: after each subscription and each reconnection, the log is read past the cursor.

A shard that does not answer is retried with backoff, its streams kept open for up to
*retry_seconds* of silence; then its topics' local streams end (their clients resume from
their ids), and it goes on retrying. Each retry asks the cluster where the topics' slots
are now, so after a failover within the cluster the reader follows them to the new primary.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import redis
from redis.client import PubSub
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from .. import metrics
from ._base import (
    NO_EPOCH,
    Fanout,
    Follower,
    LogRead,
    Position,
    ReadProgress,
    Subscription,
    hand_over,
    parse_entry_id,
)
from ._topology import node_of, refresh

logger = logging.getLogger(__name__)

# How often a shard's reader looks for topics to (un)subscribe between announcements
# (seconds): a new topic's first events wait at most this long, and none is lost.
_POLL = 0.05
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 5.0
# How long closing the broker waits for its shard readers to end their rounds (seconds).
_STOP_WAIT = 1.0


class ClusterKeys(Protocol):
    def bell(self, topic: str) -> str: ...
    def topic_of_bell(self, bell: str) -> str: ...


class ClusterReader(Follower):
    """Every shard reader of this worker, and the cursor of each followed topic."""

    def __init__(  # noqa: PLR0913  (each a part of its own)
        self,
        cluster: RedisCluster,
        connect: Callable[[str, int], redis.Redis],
        read: Callable[[Mapping[str, Position]], dict[str, LogRead]],
        fanout: Fanout,
        keys: ClusterKeys,
        *,
        read_count: int,
        retry_seconds: float,
    ) -> None:
        """*read* reads each topic's log past a position, *read_count* entries at most."""
        super().__init__(fanout)
        self.pid = os.getpid()
        self.read_count = read_count
        self.cluster = cluster
        self.connect = connect
        self.keys = keys
        self.retry_seconds = retry_seconds
        self._read = read
        self._shards: dict[str, _Shard] = {}
        self.stopped = threading.Event()

    def start(self) -> None:
        """Nothing to start yet: a shard's reader starts with its first topic."""

    def stop(self) -> None:
        """Stop every shard reader, waiting a moment for each to finish its round.

        The broker closes the cluster client next: a shard reader still reading through it
        would fail on a connection closed under it.
        """
        self.stopped.set()
        with self._lock:
            shards = list(self._shards.values())
        deadline = time.monotonic() + _STOP_WAIT
        for shard in shards:
            shard.join(max(deadline - time.monotonic(), 0))

    def lag(self) -> float:
        """Seconds the furthest-behind shard reader has not had every entry its shard held."""
        with self._lock:
            shards = list(self._shards.values())
        return max((shard.lag() for shard in shards if shard.alive), default=0.0)

    def add(self, subscription: Subscription, ends: Mapping[str, Position]) -> list[str]:
        """Follow *subscription*'s topics; a topic new here is read from its end in *ends*.

        Returns the topics new here that *ends* lacks, and then registers nothing.
        """
        missing, new = self._register(subscription, ends)
        if missing:
            return missing
        for topic in new:
            self.place(topic)
        return []

    def place(self, topic: str) -> None:
        """Hand *topic* to the reader of the shard that holds its slot now."""
        host, port = node_of(self.cluster, self.keys.bell(topic))
        with self._lock:
            if self.stopped.is_set():
                return  # closed: a shard started now would read through a closed client
            shard = self._shards.get(f"{host}:{port}")
            if shard is None or not shard.alive:
                shard = self._shards[f"{host}:{port}"] = _Shard(self, host, port)
                shard.start()
            shard.wanted.add(topic)

    def move(self, shard: _Shard, topics: set[str]) -> None:
        """Take *topics* from *shard*, to place them anew; a shard left with none (its
        node no longer serves them) stops."""
        with self._lock:
            shard.wanted -= topics
            if not shard.wanted:
                shard.alive = False
        for topic in topics:
            self.place(topic)

    def followed(self, shard: _Shard) -> set[str]:
        """The topics of *shard* that a local subscriber still follows. The others leave
        the shard and lose their cursor (a later subscriber starts afresh)."""
        # Under the lock that add() holds while it registers a subscription: a topic added
        # meanwhile must not lose the cursor it was just given.
        with self._lock:
            current = set(self.fanout.topics())
            for topic in shard.wanted - current:
                self._cursors.pop(topic, None)
            shard.wanted &= current
            return set(shard.wanted)

    def catch_up(self, topics: set[str]) -> bool:
        """Read *topics*' logs past their cursors and hand what is new to the feeds; True
        when that was all they held."""
        with self._lock:
            start = {
                topic: Position(NO_EPOCH, parse_entry_id(self._cursors[topic]))
                for topic in topics
                if topic in self._cursors
            }
        if not start:
            return True
        moved, caught_up = hand_over(self.fanout, start, self._read(start), self.read_count)
        with self._lock:
            for topic, last in moved.items():
                if topic in self._cursors:
                    self._cursors[topic] = last
        return caught_up

    def give_up(self, shard: _Shard) -> None:
        """End the local streams of *shard*'s topics: it stayed out of reach too long."""
        with self._lock:
            topics, shard.wanted = shard.wanted, set()
            for topic in topics:
                self._cursors.pop(topic, None)
        for topic in topics:
            self.fanout.end_topic(topic, "lost the connection to the broker; reconnect to resume")


class _Shard:
    """One shard's reader: a thread (greenlet) with one subscribed connection to its node."""

    def __init__(self, reader: ClusterReader, host: str, port: int) -> None:
        self.reader = reader
        self.host, self.port = host, port
        # The topics to follow here; changed under the reader's lock only.
        self.wanted: set[str] = set()
        self.alive = True
        self._progress = ReadProgress()
        self._thread = threading.Thread(
            target=self._run, name=f"channels-reader-{host}:{port}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def join(self, seconds: float) -> None:
        """Wait up to *seconds* for the reader to end (after `ClusterReader.stop`)."""
        self._thread.join(seconds)

    def lag(self) -> float:
        """Seconds since this reader last had every entry its shard held; 0 while it has."""
        return self._progress.lag()

    def _note(self, *, caught_up: bool) -> None:
        """Whether the last round left nothing unread on the shard; the metrics get the
        lag of the furthest-behind shard reader of the worker."""
        self._progress.note(caught_up=caught_up)
        metrics.reader_read(self.reader.lag())

    def _run(self) -> None:
        reader = self.reader
        client = reader.connect(self.host, self.port)
        pubsub: PubSub | None = None
        subscribed: set[str] = set()
        backoff = _BACKOFF_FIRST
        answered = time.monotonic()
        try:
            while self.alive and not reader.stopped.is_set():
                try:
                    if pubsub is None:
                        pubsub = client.pubsub(ignore_subscribe_messages=True)
                        subscribed = set()
                    caught_up = self._follow(pubsub, subscribed)
                except Exception as error:
                    if reader.stopped.is_set():
                        # Closed under a read that outlasted the wait in `stop`: redis-py
                        # fails then in ways of its own, AttributeError among them.
                        return
                    if not isinstance(error, RedisError | RedisClusterException):
                        raise
                    metrics.reader_reconnecting()
                    self._note(caught_up=False)
                    if pubsub is not None:
                        pubsub.close()
                        pubsub = None
                    silent = time.monotonic() - answered
                    if silent >= reader.retry_seconds and self.wanted:
                        logger.warning(
                            "channel reader of %s:%s: no answer for %.1f s (%s); its streams "
                            "ended, retrying",
                            self.host,
                            self.port,
                            silent,
                            error,
                        )
                        reader.give_up(self)
                    else:
                        logger.warning(
                            "channel reader of %s:%s: no answer for %.1f s (%s); streams kept "
                            "open, retrying in %.1f s",
                            self.host,
                            self.port,
                            silent,
                            error,
                            backoff,
                        )
                    reader.stopped.wait(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX)
                    self._relocate()
                    continue
                backoff = _BACKOFF_FIRST
                answered = time.monotonic()
                self._note(caught_up=caught_up)
        finally:
            self.alive = False
            if pubsub is not None:
                pubsub.close()
            client.close()

    def _follow(self, pubsub: PubSub, subscribed: set[str]) -> bool:
        """One round: (un)subscribe, wait for announcements (a poll at most), read the logs;
        True when nothing is left unread."""
        reader = self.reader
        wanted = reader.followed(self)
        woken = set()
        for topic in wanted - subscribed:
            # One command per topic: the channels of one SSUBSCRIBE share a slot.
            pubsub.ssubscribe(reader.keys.bell(topic))
            subscribed.add(topic)
            woken.add(topic)  # what came before the subscription is read from the log
        for topic in subscribed - wanted:
            pubsub.sunsubscribe(reader.keys.bell(topic))
            subscribed.discard(topic)
        message = pubsub.get_message(timeout=_POLL if not woken else 0)
        while message is not None:
            if message["type"] == "smessage":
                woken.add(reader.keys.topic_of_bell(message["channel"]))
            message = pubsub.get_message(timeout=0)
        if woken & subscribed:
            return reader.catch_up(woken & subscribed)
        return True

    def _relocate(self) -> None:
        """Ask the cluster where this shard's topics are now; move those that left."""
        reader = self.reader
        refresh(reader.cluster)
        gone = set()
        for topic in set(self.wanted):
            if node_of(reader.cluster, reader.keys.bell(topic)) != (self.host, self.port):
                gone.add(topic)
        if gone:
            reader.move(self, gone)
