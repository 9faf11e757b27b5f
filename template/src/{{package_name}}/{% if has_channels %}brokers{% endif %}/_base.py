"""What every broker shares: positions, events, replay, subscriptions and the local fan-out.

A broker keeps one ordered log per topic. A *position* names an entry of that log: the epoch
of the broker's logs (which changes whenever they may have lost entries: Redis flushed,
restarted or failed over, or a new process for the memory broker) and the entry's id. Entry
ids order the events of every topic in publish order. A subscriber starts from a position
per topic; the broker replays what came after it, a page at a time while the stream is sent,
then delivers live entries from the worker's shared feed of the topic, each exactly once and
in order. When the history after a position is gone, the subscriber gets a `Reset` first.

Many subscribers of a worker often resume from the same place at once (every client of a
topic comes back after a restart): their identical reads of the history are merged into one
(`MergedReads`), and a resume within the recent events the worker holds for a topic (its
feed, which knows how much of the log it holds without a gap) is served from memory.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from .. import sse
from ..streaming import shutting_down

logger = logging.getLogger(__name__)

# An epoch is 8 lowercase hex digits. Older versions wrote "0" for a topic that had no log
# yet; such an id is still read (and answered with a reset).
NO_EPOCH = "0"
_EPOCH = re.compile(r"0|[0-9a-f]{8}")
# An entry id is two decimal numbers, as Redis Streams write them: "<ms>-<seq>".
_ENTRY = re.compile(r"(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})")
# The id before the first entry of every log.
START = (0, 0)
# The epoch of a position whose epoch is not known: no position a client holds matches it.
UNKNOWN_EPOCH = ""
# Entries read from one topic's log per round trip while replaying: what a replay holds in
# memory at once, whatever the length of the history.
REPLAY_PAGE = 100


class BrokerError(Exception):
    """Base class of the errors a broker raises."""


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached right now; a retry later may succeed."""


class NotReplicated(BrokerUnavailable):
    """A durable publish reached fewer replicas than asked for in time.

    The event is on the primary (subscribers may get it) but a failover could lose it:
    the publisher is not told it is safe. Publishing it again gives a second event.
    """


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
    """One published event; a live one is shared by all of a worker's subscribers.

    Its encodings are made when a stream first sends it, in that stream's format only, and
    kept for the next subscriber. ``sse_body`` is the event without its ``id:`` line and
    ``ndjson_body`` the JSON record without its ``"id"`` member: a stream of several topics
    adds its own combined id. The ``*_alone`` forms are complete, for the (common) streams
    that follow this topic alone.
    """

    topic: str
    position: Position
    data: str
    event: str | None

    @cached_property
    def sse_body(self) -> str:
        return sse.format_event(self.data, event=self.event or None)

    @cached_property
    def ndjson_body(self) -> str:
        return self._record()

    # The complete forms are not built from the bodies above: that would keep both.
    @cached_property
    def sse_alone(self) -> str:
        body = sse.format_event(self.data, event=self.event or None)
        return f"id: {self.topic}:{self.position}\n{body}"

    @cached_property
    def ndjson_alone(self) -> str:
        return f'{{"id":"{self.topic}:{self.position}",{self._record()[1:]}\n'

    def _record(self) -> str:
        return json.dumps(
            {"topic": self.topic, "event": self.event, "data": self.data},
            ensure_ascii=False,
            separators=(",", ":"),
        )

    def fresh(self) -> Event:
        """The same event without the encodings a stream made: a replay's own copy."""
        return Event(self.topic, self.position, self.data, self.event)


@dataclass(frozen=True)
class Reset:
    """The history of *topics* after the subscriber's position is gone: events were missed.

    *positions* says where each of them continues, when that moves (a replay skips what is
    gone); a topic missing from it keeps its position, and the event that follows sets it.
    """

    topics: tuple[str, ...]
    positions: Mapping[str, Position] = field(default_factory=dict)


Item = Event | Reset


@dataclass(frozen=True)
class LogRead:
    """What one atomic read of a topic's log found, from a position on.

    *entries* are the log's entries from the position's entry on (that entry itself first,
    when the log still has it), at most a page and one. *trimmed* is the id of the last
    entry trimmed from the front of the log (`START` when none was), *earlier* whether the
    log holds an entry before the position, *last* the id of its newest entry (`START`
    when it has none).
    """

    epoch: str
    last: tuple[int, int]
    trimmed: tuple[int, int]
    earlier: bool
    entries: list[Event]


@dataclass(frozen=True)
class Page:
    """The next events after a position, or where to continue when history is gone."""

    events: list[Event]
    # The log may hold more after the last of them (after a reset: after its position).
    more: bool
    reset: Position | None = None


def next_page(position: Position, log: LogRead, size: int) -> Page:
    """The page of *log* right after *position*, or a reset to the log's end.

    Every position a broker hands out names an entry that was in the log (or `START`), and
    entries leave a log only from its front. So the history after *position* is complete
    exactly when the log still holds that entry, or when that entry is the last one trimmed
    and nothing before it is left. Anything else (another epoch, trimmed past it, or an id
    the log never had: its tail was lost, or the id comes from elsewhere) is a reset.
    """
    end = Position(log.epoch, log.last)
    if position.epoch != log.epoch:
        return Page([], more=False, reset=end)
    entries = log.entries
    if entries and entries[0].position.entry == position.entry:
        entries = entries[1:]
    elif log.earlier or position.entry != log.trimmed:
        return Page([], more=False, reset=end)
    return Page(entries[:size], more=len(entries) >= size)


class ReadProgress:
    """Whether a worker's reader read everything there was last time, and since when it has
    not: how far it lags behind the logs (for `Broker.lag`, ``/readyz`` and the metrics)."""

    __slots__ = ("_caught_up", "_since")

    def __init__(self) -> None:
        self._caught_up = True
        self._since = time.monotonic()

    def note(self, *, caught_up: bool) -> None:
        """The last read (or wait) left nothing unread, or it did not."""
        if caught_up:
            self._since = time.monotonic()
        self._caught_up = caught_up

    def lag(self) -> float:
        """Seconds since a read last left nothing unread; 0 while the last one did."""
        return 0.0 if self._caught_up else time.monotonic() - self._since


class Follower:
    """What a worker's reader (of one server, or of the shards of a cluster) keeps of the
    topics its local subscribers follow: the entry id it has read each one up to."""

    def __init__(self, fanout: Fanout) -> None:
        self.fanout = fanout
        self._lock = threading.Lock()
        self._cursors: dict[str, str] = {}

    def follows(self, topic: str) -> bool:
        """Whether the reader reads *topic* now (it may stop when its last stream ends)."""
        return topic in self._cursors

    def _register(
        self, subscription: Subscription, ends: Mapping[str, Position]
    ) -> tuple[list[str], list[str]]:
        """Follow *subscription*'s topics: a topic new here gets a cursor at its end in
        *ends*, and the subscription joins the feeds.

        Returns the topics new here that *ends* lacks (and then registers nothing), and the
        topics nobody here followed before.
        """
        with self._lock:
            cursors = self._cursors
            if missing := [t for t in subscription.topics if t not in cursors and t not in ends]:
                return missing, []
            bases = {}
            for topic in subscription.topics:
                if topic not in cursors:
                    cursors[topic] = ends[topic].entry_id
                    bases[topic] = ends[topic]
            return [], self.fanout.add(subscription, bases)


def hand_over(
    fanout: Fanout, start: Mapping[str, Position], logs: Mapping[str, LogRead], size: int
) -> tuple[dict[str, str], bool]:
    """Hand what a worker's reader read of each log past its cursor (*start*) to the local
    subscribers; return the entry id each topic's cursor moves to, and whether that was all
    the logs held (a full page means more are waiting: the reader lags).

    The reader reads with the same atomic check as a replay, because a reader that lags
    behind a log's trimming would otherwise read on past entries trimmed before it got to
    them. When some are gone, the topic's streams here are ended: their clients resume
    from their own ids (a replay, or a reset).
    """
    moved = {}
    caught_up = True
    for topic, log in logs.items():
        # Epochs are the subscribers' business: the reader only follows entries.
        page = next_page(Position(log.epoch, start[topic].entry), log, size)
        if page.reset is not None:
            fanout.end_topic(topic, "this server fell behind the history; reconnect")
            moved[topic] = page.reset.entry_id
        elif page.events:
            # Encoded once (when first sent), shared by every local subscriber.
            fanout.deliver(topic, page.events, start[topic].entry)
            moved[topic] = page.events[-1].position.entry_id
            caught_up = caught_up and not page.more
    return moved, caught_up


ReadPages = Callable[[Mapping[str, Position], int], dict[str, Page]]


class Replay:
    """The history after a subscriber's positions, read while its stream is sent.

    Each topic's log is read a page at a time (`REPLAY_PAGE` entries, each page checked for
    a gap in the same atomic read), and the pages of several topics are merged by entry id,
    which is publish order. Memory is therefore bounded by a page per topic, and the first
    byte of the stream goes out before anything is read. A replay longer than *limit*
    events ends with a `Reset` of the topics that still had history to send, which continue
    from the log's end.
    """

    def __init__(
        self,
        read: ReadPages,
        ends: Callable[[Iterable[str]], dict[str, Position]],
        start: Mapping[str, Position],
        limit: int,
    ) -> None:
        self._read = read
        self._ends = ends
        self._after = dict(start)
        self._pages: dict[str, deque[Event]] = {topic: deque() for topic in start}
        self._more = set(start)
        self._left = limit
        self._resets: deque[Reset] = deque()

    def next(self) -> Item | None:
        """The next replayed item, reading a page when one is due; None once all is sent."""
        # A page can be empty while the log may hold more (a read shared with a stream that
        # began earlier, see `Broker._pages`): every topic with history left gets a page
        # with events before the heads are compared.
        while wanted := [t for t, page in self._pages.items() if not page and t in self._more]:
            self._fetch(wanted)
            if self._resets:
                break
        if self._resets:
            return self._resets.popleft()
        heads = [(page[0].position.entry, topic) for topic, page in self._pages.items() if page]
        if not heads:
            return None
        if self._left == 0:
            return self._cut()
        self._left -= 1
        return self._pages[min(heads)[1]].popleft()

    def _fetch(self, topics: list[str]) -> None:
        pages = self._read({topic: self._after[topic] for topic in topics}, REPLAY_PAGE)
        moved: dict[str, Position] = {}
        for topic in topics:
            page = pages[topic]
            if page.reset is not None:
                moved[topic] = page.reset
                if page.more:
                    # The reset names a log end read before this stream subscribed (see
                    # `Broker._pages`): what came after it is read on from there.
                    self._after[topic] = page.reset
                else:
                    self._drop(topic)
                continue
            self._pages[topic].extend(page.events)
            if page.events:
                self._after[topic] = page.events[-1].position
            if not page.more:
                self._more.discard(topic)
        if moved:
            self._resets.append(Reset(tuple(moved), moved))

    def _cut(self) -> Reset:
        """The bound is reached with history left: skip the rest, to each log's end."""
        topics = [t for t, page in self._pages.items() if page or t in self._more]
        for topic in topics:
            self._drop(topic)
        return Reset(tuple(topics), self._ends(topics))

    def _drop(self, topic: str) -> None:
        self._pages.pop(topic)
        self._more.discard(topic)


class Closed(Exception):
    """Raised by `Subscription.get` when the subscription has ended; *reason* says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Feed:
    """One topic's recent live events in this worker, shared by all of its local subscribers.

    An event is stored once, whatever the number of subscribers: each of them keeps only a
    cursor into the feed. Events are numbered without gaps; at most *size* of them are
    readable, older ones are dropped in blocks. Only the fan-out writes, under its lock;
    subscribers read without it: ``window`` is replaced in one assignment and the list in
    it only ever grows, so a reader always sees a consistent pair.

    A subscriber of this topic alone waits on ``signal``, which is set, and replaced by a
    fresh one, whenever the feed changes: one ``set()`` wakes them all. Subscribers of
    several topics cannot wait on several signals at once: they are in ``several`` and
    are woken one by one.

    The feed is also the worker's recent window of the topic's log. The events numbered
    from ``known`` on are, in order, every entry of the log after ``base`` (the position of
    the entry before them), with no gap: each delivery says which entry it follows, and one
    that does not follow the feed's last event starts the known part afresh. A resume from
    a position in it is served from memory (`page_after`), and a page of history read for
    an older position extends it backwards (`prepend`). ``newest`` is the number of the
    first event of the newest epoch in it.
    """

    __slots__ = (
        "base",
        "followers",
        "fresh",
        "known",
        "newest",
        "several",
        "signal",
        "size",
        "window",
    )

    def __init__(self, size: int, base: Position | None) -> None:
        self.size = size
        # (number of the first event, events).
        self.window: tuple[int, list[Event]] = (0, [])
        self.signal = threading.Event()
        self.followers: set[Subscription] = set()
        self.several: set[Subscription] = set()
        self.fresh = False  # got events since the ticker's last round
        # None: nothing is known of the log yet (the first delivery says where it starts).
        self.base = base
        self.known = self.newest = 0

    @property
    def end(self) -> int:
        """The number the next entry gets: a cursor here reads only what comes next."""
        first, entries = self.window
        return first + len(entries)

    def extend(self, events: Iterable[Event], after: tuple[int, int]) -> None:
        """Append *events*, the log's entries right after the entry *after*."""
        if self.base is None or after != self._last_known():
            # What came in between is not here: the known part starts with these events.
            self.known = self.newest = self.end
            self.base = Position(UNKNOWN_EPOCH, after)
        for event in events:
            entries = self.window[1]
            if self.end > self.known and entries[-1].position.epoch != event.position.epoch:
                self.newest = self.end
            self.append(event)

    def _last_known(self) -> tuple[int, int] | None:
        """The entry of the known part's last event, or its base when it has none."""
        if self.end > self.known:
            return self.window[1][-1].position.entry
        return None if self.base is None else self.base.entry

    def append(self, event: Event) -> None:
        first, entries = self.window
        entries.append(event)
        if len(entries) > 2 * self.size:
            # Trimmed in blocks, so that appending costs O(1) on average; a reader still
            # holding the old list reads from it undisturbed.
            drop = len(entries) - self.size
            if self.known < first + drop:
                self.base = entries[drop - 1].position
                self.known = first + drop
            self.newest = max(self.newest, first + drop)
            self.window = (first + drop, entries[drop:])

    def page_after(self, position: Position, size: int) -> Page | None:
        """The events after *position*, when the known part holds all of them in one epoch:
        what a read of the log would give (None: read the log)."""
        if self.base is None:
            return None
        first, entries = self.window
        if position == self.base:
            at = self.known - first
        else:
            at = bisect.bisect_left(
                entries, position.entry, lo=self.known - first, key=_entry_order
            )
            if at == len(entries) or entries[at].position != position:
                return None
            at += 1
        after = entries[at:]
        # Events of another epoch after the position: the log may have lost some in between,
        # and a read says so with a reset.
        if after and (first + at < self.newest or after[-1].position.epoch != position.epoch):
            return None
        return Page(after[:size], more=len(after) > size)

    def prepend(self, position: Position, page: Page) -> None:
        """Extend the known part back to *position* with *page*, the log's entries after it,
        when the page reaches the known part's base and nothing precedes that part here."""
        if self.base is None or page.reset is not None or position.entry >= self.base.entry:
            return
        first, entries = self.window
        at = bisect.bisect_left(page.events, self.base.entry, key=_entry_order)
        if self.known != first or at == len(page.events):
            return
        if page.events[at].position.entry != self.base.entry:
            return
        older = page.events[: at + 1]
        if self.newest == first:
            # The newest epoch may reach further back, into the older events.
            epoch = entries[-1].position.epoch if entries else older[-1].position.epoch
            same = len(older)
            while same and older[same - 1].position.epoch == epoch:
                same -= 1
            self.newest = first - len(older) + same
        self.known = first - len(older)
        self.base = position
        self.window = (self.known, older + entries)

    def since(self, cursor: int) -> list[Event] | None:
        """The events from *cursor* on, or None when more than *size* came since."""
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

    *positions* is where the subscriber stands in each topic; *replay*, when given, reads
    the history after them (see `Replay`). Live events are read from the worker's shared
    feeds (see `Fanout`). A subscriber that falls more than the feed size behind is closed
    rather than silently skipped: its client reconnects with the last id it has and catches
    up from the history.
    """

    def __init__(self, positions: Mapping[str, Position], replay: Replay | None = None) -> None:
        self.positions: dict[str, Position] = dict(positions)
        self._replay = replay
        # A live event held back while the `Reset` that must precede it goes out.
        self._after_reset: Event | None = None
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
        may have lost entries) yields a `Reset` first. Raises `Closed` once the
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
        """The next replayed item, or live one already read from the feeds, else None.

        It never waits for events (a replay reads its next page from the broker). A stream
        that has fallen behind sends what has piled up in one write; what arrives meanwhile
        is for the next `get`. When the broker fails mid-replay, the subscription ends.
        """
        self.from_replay = False
        if self._replay is not None:
            try:
                item = self._replay.next()
            except BrokerUnavailable as error:
                logger.warning("a replay failed: %s", error)
                self._replay = None
                self.end("the broker failed while replaying history; reconnect to resume")
                return None
            if item is None:
                self._replay = None  # live events from here on
            else:
                self._moved(item)
                self.from_replay = True
                return item
        if self._after_reset is not None:
            event, self._after_reset = self._after_reset, None
            self._moved(event)
            return event
        while self._live:
            if (accepted := self._accept(self._live.popleft())) is not None:
                return accepted
        return None

    def _moved(self, item: Item) -> None:
        """Advance this stream's positions past *item*, which is being sent."""
        if isinstance(item, Event):
            self.positions[item.topic] = item.position
        else:
            self.positions.update(item.positions)

    def _read(self) -> None:
        """Move what the feeds hold past this subscription's cursors to its own live list."""
        found: list[Event] = []
        for index, feed in enumerate(self._feeds):
            entries = feed.since(self._cursors[index])
            if entries is None:
                self.end("fell too far behind; reconnect to catch up from the history")
                return
            self._cursors[index] += len(entries)
            found += entries
        if len(self._feeds) > 1:
            # Several topics: entry ids order their events as they were published.
            found.sort(key=_entry_order)
        self._live.extend(found)

    def _accept(self, event: Event) -> Item | None:
        """*event* if this stream has not passed it yet; a `Reset` first on a new epoch."""
        current = self.positions[event.topic]
        if event.position.entry <= current.entry:
            # Sent already (by the replay), or older than where a reset moved this stream.
            return None
        if event.position.epoch != current.epoch:
            # The log may have lost entries between the two (a restart, a failover): the
            # reset goes first, still with the old position, so that a client that drops
            # before the event comes back to a reset again rather than past the event.
            self._after_reset = event
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
        self._ticker_pid: int | None = None
        self._stopped = threading.Event()

    def add(
        self, subscription: Subscription, bases: Mapping[str, Position] | None = None
    ) -> list[str]:
        """Register *subscription*; return the topics nobody here followed before.

        It reads each topic from the current end of its feed: what was delivered before is
        the replay's business. A new feed of a topic in *bases* is told where in the log
        its deliveries will start.
        """
        self._start_ticker()
        with self._lock:
            new = [t for t in subscription.topics if t not in self._feeds]
            for topic in subscription.topics:
                feed = self._feeds.get(topic)
                if feed is None:
                    base = bases.get(topic) if bases else None
                    feed = self._feeds[topic] = _Feed(self._feed_size, base)
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
            return feed.window[1][-1].position

    def deliver(self, topic: str, events: Iterable[Event], after: tuple[int, int]) -> None:
        """Append *events* to *topic*'s feed and wake its subscribers once.

        *events* are, in order, the entries of the topic's log right after the entry *after*.
        """
        with self._lock:
            feed = self._feeds.get(topic)
            if feed is None:
                return
            feed.extend(events, after)
            feed.fresh = True
            # Setting an event never switches threads or greenlets: safe under the lock.
            feed.wake()

    def page_after(self, topic: str, position: Position, size: int) -> Page | None:
        """The page after *position* from *topic*'s feed, if it holds it (see `_Feed`)."""
        with self._lock:
            feed = self._feeds.get(topic)
            return None if feed is None else feed.page_after(position, size)

    def prepend(self, topic: str, position: Position, page: Page) -> None:
        """Keep *page*, read from the log after *position*, in *topic*'s feed if it fits."""
        with self._lock:
            feed = self._feeds.get(topic)
            if feed is not None:
                feed.prepend(position, page)

    def end_topic(self, topic: str, reason: str) -> None:
        """End the subscriptions of *topic*: this worker missed some of its events."""
        with self._lock:
            feed = self._feeds.pop(topic, None)
            if feed is None:
                return
            for subscription in feed.followers:
                subscription.end(reason)
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


class _Flight:
    """One read of a topic's log under way, and what it found (or why it failed)."""

    __slots__ = ("done", "outcome")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.outcome: LogRead | BaseException | None = None

    def result(self) -> LogRead:
        """What the read found, once it is done; its error, if it failed."""
        self.done.wait()
        if isinstance(self.outcome, LogRead):
            return self.outcome
        raise self.outcome or BrokerUnavailable("a shared read of the history ended unfinished")


class MergedReads:
    """Identical reads of the history by several streams of a worker, made once.

    A read of a topic's log from a position while the same read is under way waits for it
    and shares what it found. Such a read may have begun before the stream that joins it
    subscribed, so it cannot tell what was delivered since: `Broker._pages` then reads on
    from where it ends (from memory, usually).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[tuple[str, Position, int], _Flight] = {}

    def read(
        self,
        read: Callable[[Mapping[str, Position], int], dict[str, LogRead]],
        start: Mapping[str, Position],
        size: int,
    ) -> dict[str, tuple[LogRead, bool]]:
        """Each topic's log from its position on, by *read* or by a read under way: with
        whether it was shared (True) or made here."""
        mine: dict[str, _Flight] = {}
        shared: dict[str, _Flight] = {}
        with self._lock:
            for topic, position in start.items():
                key = (topic, position, size)
                if (flight := self._flights.get(key)) is not None:
                    shared[topic] = flight
                else:
                    mine[topic] = self._flights[key] = _Flight()
        found: dict[str, tuple[LogRead, bool]] = {}
        if mine:
            try:
                logs = read({topic: start[topic] for topic in mine}, size)
            except BaseException as error:
                for flight in mine.values():
                    flight.outcome = error
                raise
            else:
                for topic, flight in mine.items():
                    flight.outcome = logs[topic]
                    found[topic] = (logs[topic], False)
            finally:
                with self._lock:
                    for topic in mine:
                        del self._flights[topic, start[topic], size]
                for flight in mine.values():
                    flight.done.set()
        for topic, flight in shared.items():
            found[topic] = (flight.result(), True)
        return found


class Broker(ABC):
    """A backend: publishes to a topic's log and subscribes from positions in logs.

    A backend implements `publish`, `positions`, `subscribe`, `check` and `close`, and
    `_read` for the replay: an atomic read of each log from a position on, whose verdict
    (`next_page`) is the same for every backend.
    """

    #: True when every worker and host sees every event (False for the in-process broker).
    shared: bool = True
    #: The most events one stream replays; a longer replay ends with a reset.
    replay_limit: int
    #: Whether identical reads of the history are merged and recent events served from the
    #: feeds (see `MergedReads`, `_Feed`); off only to measure what that saves.
    merge_reads: bool = True
    _fanout: Fanout
    _merged: MergedReads

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

    def publish(self, topic: str, data: str, event: str | None = None) -> Position:
        """Append an event to *topic*'s log and return its position."""
        return self.publish_many(topic, [(data, event)])[0]

    @abstractmethod
    def publish_many(self, topic: str, events: Sequence[tuple[str, str | None]]) -> list[Position]:
        """Append *events* (each its data and event name) to *topic*'s log, in order, all
        or none, and return their positions."""

    @abstractmethod
    def positions(self, topics: Iterable[str]) -> dict[str, Position]:
        """The current end of each topic's log: subscribing from there replays nothing."""

    @abstractmethod
    def subscribe(self, start: Mapping[str, Position | None]) -> Subscription:
        """Follow the topics of *start*, from each position given (None: from now on).

        It registers the subscriber for live events and reads nothing of the history: the
        returned subscription replays it (or yields a `Reset` where it is gone) while it
        is iterated, then yields live events. Raises `BrokerUnavailable` when the broker
        cannot be reached.
        """

    @abstractmethod
    def _read(self, start: Mapping[str, Position], size: int) -> dict[str, LogRead]:
        """Read each topic's log from its position in *start* on: up to *size* + 1 entries,
        each topic in one atomic step."""

    @abstractmethod
    def check(self) -> None:
        """Raise `BrokerUnavailable` with a clear message when the broker cannot be reached."""

    def close(self) -> None:  # noqa: B027  (optional for backends that hold nothing)
        """Release connections and background readers."""

    def _replay(self, start: Mapping[str, Position | None]) -> Replay | None:
        """The replay of a subscriber starting at *start*, for the topics it gave a position."""
        given = {topic: p for topic, p in start.items() if p is not None}
        if not given:
            return None
        return Replay(self._pages, self.positions, given, self.replay_limit)

    def _pages(self, start: Mapping[str, Position], size: int) -> dict[str, Page]:
        """The page after each position of *start*: from the topic's feed when it holds it,
        else from the log, in a read shared with the streams that make the same one."""
        if not self.merge_reads:
            logs = self._read(start, size)
            return {topic: next_page(p, logs[topic], size) for topic, p in start.items()}
        pages: dict[str, Page] = {}
        wanted: dict[str, Position] = {}
        for topic, position in start.items():
            page = self._fanout.page_after(topic, position, size)
            if page is None:
                wanted[topic] = position
            else:
                pages[topic] = page
        if not wanted:
            return pages
        for topic, (log, shared) in self._merged.read(self._read, wanted, size).items():
            page = next_page(wanted[topic], log, size)
            # Kept, so that the next stream resuming from here needs no read at all.
            self._fanout.prepend(topic, wanted[topic], page)
            if shared and not page.more:
                # The read may have begun before this stream subscribed: what was delivered
                # to the feed since may be past its end, or past the log end a reset names
                # (a crowd coming back after a failover). Read on from there.
                page = replace(page, more=True)
            pages[topic] = page
        return pages


def _entry_order(event: Event) -> tuple[int, int]:
    return event.position.entry
