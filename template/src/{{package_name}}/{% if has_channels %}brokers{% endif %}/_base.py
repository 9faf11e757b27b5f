"""What every broker shares: positions, events, subscriptions and the local fan-out.

A broker keeps one ordered log per topic. A *position* names an entry of that log: the log's
epoch (which changes when the log is lost and recreated) and the entry's id. A subscriber
starts from a position per topic; the broker replays what came after it, then delivers live
entries from the worker's shared feed of the topic, each exactly once and in order.
"""

from __future__ import annotations

import json
import operator
import os
import re
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .. import sse
from ..streaming import shutting_down

# An epoch is 8 lowercase hex digits, or "0" for a topic that had no log yet when the
# position was taken (nothing can have been missed before its first entry).
NO_EPOCH = "0"
_EPOCH = re.compile(r"0|[0-9a-f]{8}")
# An entry id is two decimal numbers, as Redis Streams write them: "<ms>-<seq>".
_ENTRY = re.compile(r"(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})")


class BrokerError(Exception):
    """Base class of the errors a broker raises."""


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached right now; a retry later may succeed."""


class PositionAhead(BrokerError):
    """A position names an entry this topic never had: it is forged or from another system."""


@dataclass(frozen=True, order=True)
class Position:
    """Where a subscriber is in one topic's log: after the entry *entry* of epoch *epoch*."""

    epoch: str
    entry: tuple[int, int]

    @classmethod
    def parse(cls, text: str) -> Position:
        """Read ``<epoch>:<ms>-<seq>``; raise ``ValueError`` on anything else."""
        epoch, _, entry = text.partition(":")
        match = _ENTRY.fullmatch(entry)
        if not _EPOCH.fullmatch(epoch) or match is None:
            raise ValueError(f"not a position: {text!r}")
        return cls(epoch, (int(match[1]), int(match[2])))

    @classmethod
    def start(cls) -> Position:
        """The position before the first entry of a topic that has no log yet."""
        return cls(NO_EPOCH, (0, 0))

    @property
    def entry_id(self) -> str:
        """The entry id as the broker writes it, e.g. ``1733045012345-0``."""
        return f"{self.entry[0]}-{self.entry[1]}"

    def __str__(self) -> str:
        return f"{self.epoch}:{self.entry_id}"


def parse_entry_id(entry_id: str) -> tuple[int, int]:
    """Split a broker's ``<ms>-<seq>`` entry id into the numbers it compares by."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


@dataclass(frozen=True)
class Event:
    """One published event, encoded once per worker and shared by all its subscribers.

    ``sse_body`` is the event without its ``id:`` line and ``ndjson_body`` the JSON record
    without its ``"id"`` member: a stream of several topics adds its own combined id. The
    ``*_alone`` forms are complete, for the (common) streams that follow this topic alone.
    """

    topic: str
    position: Position
    data: str
    event: str | None
    sse_body: str = field(init=False, repr=False)
    ndjson_body: str = field(init=False, repr=False)
    sse_alone: str = field(init=False, repr=False)
    ndjson_alone: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        body = sse.format_event(self.data, event=self.event or None)
        record = json.dumps(
            {"topic": self.topic, "event": self.event, "data": self.data},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        ident = f"{self.topic}:{self.position}"
        object.__setattr__(self, "sse_body", body)
        object.__setattr__(self, "ndjson_body", record)
        object.__setattr__(self, "sse_alone", f"id: {ident}\n{body}")
        object.__setattr__(self, "ndjson_alone", f'{{"id":"{ident}",{record[1:]}\n')


@dataclass(frozen=True)
class Reset:
    """The history of *topics* after the subscriber's position is gone: events were missed."""

    topics: tuple[str, ...]


Item = Event | Reset


class Closed(Exception):
    """Raised by `Subscription.get` when the subscription has ended; *reason* says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_EVENT_OF_ENTRY = operator.itemgetter(1)


class _Feed:
    """One topic's recent live events in this worker, shared by all of its local subscribers.

    An event is stored once, whatever the number of subscribers: each of them keeps only a
    cursor into the feed. Entries are numbered without gaps; at most *size* of them are
    readable, older ones are dropped in blocks. Only the fan-out writes, under its lock;
    subscribers read without it: ``window`` is replaced in one assignment and the list in
    it only ever grows, so a reader always sees a consistent pair.

    A subscriber of this topic alone waits on ``signal``, which is set, and replaced by a
    fresh one, whenever the feed changes: one ``set()`` wakes them all. Subscribers of
    several topics cannot wait on several signals at once: they are in ``several`` and
    are woken one by one.
    """

    __slots__ = ("followers", "fresh", "several", "signal", "size", "window")

    def __init__(self, size: int) -> None:
        self.size = size
        # (number of the first entry, entries): each entry is (arrival order, event).
        self.window: tuple[int, list[tuple[int, Event]]] = (0, [])
        self.signal = threading.Event()
        self.followers: set[Subscription] = set()
        self.several: set[Subscription] = set()
        self.fresh = False  # got events since the ticker's last round

    @property
    def end(self) -> int:
        """The number the next entry gets: a cursor here reads only what comes next."""
        first, entries = self.window
        return first + len(entries)

    def append(self, order: int, event: Event) -> None:
        first, entries = self.window
        entries.append((order, event))
        if len(entries) > 2 * self.size:
            # Trimmed in blocks, so that appending costs O(1) on average; a reader still
            # holding the old list reads from it undisturbed.
            drop = len(entries) - self.size
            self.window = (first + drop, entries[drop:])

    def since(self, cursor: int) -> list[tuple[int, Event]] | None:
        """The entries from *cursor* on, or None when more than *size* came since."""
        first, entries = self.window
        if first + len(entries) - cursor > self.size:
            return None
        return entries[cursor - first :]

    def wake(self) -> None:
        """Wake every subscriber of this feed."""
        signal, self.signal = self.signal, threading.Event()
        signal.set()
        for subscription in self.several:
            subscription._wake.set()


class Subscription:
    """One subscriber's view of some topics: replayed items first, then live events.

    Live events are read from the worker's shared feeds (see `Fanout`). A subscriber that
    falls more than the feed size behind is closed rather than silently skipped: its client
    reconnects with the last id it has and catches up from the history.
    """

    def __init__(self, positions: Mapping[str, Position]) -> None:
        self.positions: dict[str, Position] = dict(positions)
        self._backlog: deque[Item] = deque()
        self._live: deque[Event] = deque()
        # Set by `Fanout.add`: each followed feed, and the number of its next entry to read.
        self._feeds: list[_Feed] = []
        self._cursors: list[int] = []
        # The wake-up of a subscription of several topics (see `_Feed`).
        self._wake = threading.Event()
        self._closed: Closed | None = None
        self._on_close: list[Callable[[], None]] = []
        # Whether the item `get` or `get_ready` returned last came from the replay.
        self.from_replay = False

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self.positions)

    def prime(self, positions: Mapping[str, Position], backlog: Iterable[Item]) -> None:
        """Set where the replay ended and what it found; called once, before iterating."""
        self.positions.update(positions)
        self._backlog = deque(backlog)

    def end(self, reason: str) -> None:
        """End the subscription: `get` raises `Closed` once what it has read is out.

        It does not wake a waiting `get`: `Fanout.end_all` does, for the streams it ends.
        """
        if self._closed is None:
            self._closed = Closed(reason)

    def get(self) -> Item | None:
        """The next item; None when the fan-out's ticker woke the stream with nothing new.

        The ticker wakes quiet streams once a tick, so that they can send a heartbeat, or
        stop at their lifetime cap or a shutdown. Each event is returned once: live events
        the replay already covered are skipped, and a change of epoch mid-stream (the log
        was lost and recreated) yields a `Reset` first. Raises `Closed` once the
        subscription has ended and what it had read is out.
        """
        waited = False
        while True:
            if (item := self.get_ready()) is not None:
                return item
            if self._closed is not None:
                raise self._closed
            # Taken before reading the feeds: whatever arrives from now on sets it.
            if len(self._feeds) == 1:
                signal = self._feeds[0].signal
            else:
                signal = self._wake
                signal.clear()
            self._read()
            if self._live or self._closed is not None:
                continue
            if waited:
                return None
            signal.wait()
            waited = True

    def get_ready(self) -> Item | None:
        """The next item already read from the feeds, else None; it never waits.

        A stream that has fallen behind sends what has piled up in one write; what arrives
        meanwhile is for the next `get`.
        """
        self.from_replay = bool(self._backlog)
        if self._backlog:
            item = self._backlog.popleft()
            if isinstance(item, Event):
                self.positions[item.topic] = item.position
            return item
        while self._live:
            if (accepted := self._accept(self._live.popleft())) is not None:
                return accepted
        return None

    def _read(self) -> None:
        """Move what the feeds hold past this subscription's cursors to its own live list."""
        found: list[tuple[int, Event]] = []
        for index, feed in enumerate(self._feeds):
            entries = feed.since(self._cursors[index])
            if entries is None:
                self.end("fell too far behind; reconnect to catch up from the history")
                return
            self._cursors[index] += len(entries)
            found += entries
        if len(self._feeds) > 1:
            # Several topics: in the order their events reached this worker.
            found.sort(key=lambda entry: entry[0])
        self._live.extend(map(_EVENT_OF_ENTRY, found))

    def _accept(self, event: Event) -> Item | None:
        """*event* if this stream has not passed it yet; a `Reset` first on a new epoch."""
        current = self.positions[event.topic]
        if event.position.epoch == current.epoch:
            if event.position.entry <= current.entry:
                return None  # already replayed
        elif current.epoch != NO_EPOCH:
            self._backlog.append(event)
            self.positions[event.topic] = event.position
            return Reset((event.topic,))
        self.positions[event.topic] = event.position
        return event

    def close(self) -> None:
        """Stop receiving; safe to call more than once."""
        self.end("closed")
        for callback in self._on_close:
            callback()
        self._on_close.clear()


class Fanout:
    """The worker's local subscribers by topic, and one shared feed of live events per topic.

    Delivering events appends them to their topic's feed and wakes its subscribers; each of
    them reads the feed from its own cursor, in its own thread or greenlet. A ticker wakes
    quiet feeds each *tick* seconds, so that their streams can send heartbeats and notice
    their lifetime cap without a timed wait (under gevent a timer per wait costs more than
    the delivery itself). On shutdown it wakes every feed at once.
    """

    def __init__(self, *, feed_size: int, tick: float) -> None:
        self._lock = threading.Lock()
        self._feeds: dict[str, _Feed] = {}
        self._feed_size = feed_size
        self._tick = tick
        # Orders the events of all topics, so that a stream of several topics sends them
        # in the order they arrived here.
        self._order = 0
        self._ticker_pid: int | None = None
        self._stopped = threading.Event()

    def add(self, subscription: Subscription) -> list[str]:
        """Register *subscription*; return the topics nobody here followed before.

        It reads each topic from the current end of its feed: what was delivered before is
        the replay's business.
        """
        self._start_ticker()
        with self._lock:
            new = [t for t in subscription.topics if t not in self._feeds]
            for topic in subscription.topics:
                feed = self._feeds.get(topic)
                if feed is None:
                    feed = self._feeds[topic] = _Feed(self._feed_size)
                feed.followers.add(subscription)
                if len(subscription.topics) > 1:
                    feed.several.add(subscription)
                subscription._feeds.append(feed)
                subscription._cursors.append(feed.end)
        subscription._on_close.append(lambda: self.remove(subscription))
        return new

    def remove(self, subscription: Subscription) -> None:
        with self._lock:
            for topic in subscription.topics:
                feed = self._feeds.get(topic)
                if feed is not None:
                    feed.followers.discard(subscription)
                    feed.several.discard(subscription)
                    if not feed.followers:
                        del self._feeds[topic]

    def topics(self) -> list[str]:
        with self._lock:
            return list(self._feeds)

    def last_delivered(self, topic: str) -> Position | None:
        """The position of the last event delivered to *topic*'s feed, if it has one."""
        with self._lock:
            feed = self._feeds.get(topic)
            if feed is None or not feed.window[1]:
                return None
            return feed.window[1][-1][1].position

    def deliver(self, topic: str, events: Iterable[Event]) -> None:
        """Append *events* (of *topic*, in order) to its feed and wake its subscribers once."""
        with self._lock:
            feed = self._feeds.get(topic)
            if feed is None:
                return
            for event in events:
                self._order += 1
                feed.append(self._order, event)
            feed.fresh = True
            # Setting an event never switches threads or greenlets: safe under the lock.
            feed.wake()

    def end_all(self, reason: str) -> None:
        """End every subscription (the broker went away): their streams close cleanly."""
        with self._lock:
            feeds = list(self._feeds.values())
            self._feeds.clear()
            for feed in feeds:
                for subscription in feed.followers:
                    subscription.end(reason)
                feed.wake()

    def close(self) -> None:
        """Stop the ticker; the subscriptions are the broker's to end."""
        self._stopped.set()

    def _start_ticker(self) -> None:
        """Start this process's ticker (after gunicorn has forked: threads do not survive it)."""
        with self._lock:
            if self._ticker_pid == os.getpid():
                return
            self._ticker_pid = os.getpid()
        threading.Thread(target=self._run_ticker, name="channels-ticker", daemon=True).start()

    def _run_ticker(self) -> None:
        while not self._stopped.is_set():
            if shutting_down.is_set():
                self._stopped.wait(self._tick)
            else:
                # Returns at once on shutdown: every stream ends now, not a tick later.
                shutting_down.wait(self._tick)
            with self._lock:
                for feed in self._feeds.values():
                    # A feed that got events since the last round has woken its streams: they
                    # check their lifetime cap between events and need no heartbeat. On
                    # shutdown, every stream is woken.
                    if feed.fresh and not shutting_down.is_set():
                        feed.fresh = False
                    else:
                        feed.wake()


def merge_replay(events: Iterable[Event]) -> list[Event]:
    """Order replayed events of several topics by entry id, i.e. roughly by publish time."""
    return sorted(events, key=lambda e: e.position.entry)


class Broker(ABC):
    """A backend: publishes to a topic's log and subscribes from positions in logs."""

    #: True when every worker and host sees every event (False for the in-process broker).
    shared: bool = True
    _fanout: Fanout

    def lag(self) -> float:
        """How far this worker's reader is behind the broker's newest entry, in seconds:
        0 while it has read everything (and for brokers without a reader)."""
        return 0.0

    def delivered(self, topic: str) -> Position | None:
        """The last event of *topic* this worker has handed to its local subscribers.

        None while no subscriber here follows *topic*, or nothing has come since one does.
        A published event reaches Redis first and this worker's reader a moment later: a
        test, or a health check, compares this with what `publish` returned.
        """
        return self._fanout.last_delivered(topic)

    @abstractmethod
    def publish(self, topic: str, data: str, event: str | None = None) -> Position:
        """Append an event to *topic*'s log and return its position."""

    @abstractmethod
    def positions(self, topics: Iterable[str]) -> dict[str, Position]:
        """The current end of each topic's log: subscribing from there replays nothing."""

    @abstractmethod
    def subscribe(self, start: Mapping[str, Position | None]) -> Subscription:
        """Follow the topics of *start*, from each position given (None: from now on).

        The returned subscription first yields what was published after each position
        (or a `Reset` when that history is gone), then live events. Raises
        `BrokerUnavailable` when the broker cannot be reached, `PositionAhead` for a
        position the topic never reached.
        """

    @abstractmethod
    def check(self) -> None:
        """Raise `BrokerUnavailable` with a clear message when the broker cannot be reached."""

    def close(self) -> None:  # noqa: B027  (optional for backends that hold nothing)
        """Release connections and background readers."""
