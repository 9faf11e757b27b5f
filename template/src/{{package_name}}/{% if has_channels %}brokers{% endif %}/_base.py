"""What every broker shares: positions, events, subscriptions and the local fan-out.

A broker keeps one ordered log per topic. A *position* names an entry of that log: the log's
epoch (which changes when the log is lost and recreated) and the entry's id. A subscriber
starts from a position per topic; the broker replays what came after it, then delivers live
entries from a local queue, each exactly once and in order.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .. import sse

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


class Subscription:
    """One subscriber's view of some topics: replayed items first, then live events.

    Live events arrive on a bounded queue filled by the worker's fan-out. A subscriber that
    falls *queue_size* events behind is closed rather than silently skipped: its client
    reconnects with the last id it has and catches up from the history.
    """

    def __init__(self, positions: Mapping[str, Position], *, queue_size: int) -> None:
        self.positions: dict[str, Position] = dict(positions)
        self._queue: queue.Queue[Event | Closed] = queue.Queue(maxsize=queue_size)
        self._backlog: deque[Item] = deque()
        self._closed: Closed | None = None
        self._on_close: list[Callable[[], None]] = []

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self.positions)

    def prime(self, positions: Mapping[str, Position], backlog: Iterable[Item]) -> None:
        """Set where the replay ended and what it found; called once, before iterating."""
        self.positions.update(positions)
        self._backlog = deque(backlog)

    def offer(self, event: Event) -> None:
        """Queue a live event; called by the fan-out, never blocks."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.end("fell too far behind; reconnect to catch up from the history")

    def end(self, reason: str) -> None:
        """End the subscription: `get` raises `Closed` once the queued events are out."""
        if self._closed is None:
            self._closed = Closed(reason)
            # A full queue cannot take the marker; the reader then finds _closed itself.
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(self._closed)

    def get(self, timeout: float) -> Item | None:
        """The next item, or None after *timeout* seconds of silence (time for a heartbeat).

        Each event is returned once: live events the replay already covered are skipped, and
        a change of epoch mid-stream (the log was lost and recreated) yields a `Reset` first.
        """
        return self._take(block=True, timeout=timeout)

    def get_ready(self) -> Item | None:
        """The next item if one is there already, else None; like `get`, without waiting.

        A stream that has fallen behind sends what has piled up in one write.
        """
        return self._take(block=False, timeout=0.0)

    def _take(self, *, block: bool, timeout: float) -> Item | None:
        while True:
            if self._backlog:
                item = self._backlog.popleft()
                if isinstance(item, Event):
                    self.positions[item.topic] = item.position
                return item
            if self._closed is not None and self._queue.empty():
                raise self._closed
            try:
                got = self._queue.get(block=block, timeout=timeout if block else None)
            except queue.Empty:
                return None
            if isinstance(got, Closed):
                raise got
            current = self.positions[got.topic]
            if got.position.epoch == current.epoch:
                if got.position.entry <= current.entry:
                    continue  # already replayed
            elif current.epoch != NO_EPOCH:
                self._backlog.append(got)
                self.positions[got.topic] = got.position
                return Reset((got.topic,))
            self.positions[got.topic] = got.position
            return got

    def close(self) -> None:
        """Stop receiving; safe to call more than once."""
        self.end("closed")
        for callback in self._on_close:
            callback()
        self._on_close.clear()


class Fanout:
    """The worker's local subscribers by topic; delivers each event to each of them once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_topic: dict[str, set[Subscription]] = {}

    def add(self, subscription: Subscription) -> list[str]:
        """Register *subscription*; return the topics nobody here followed before."""
        with self._lock:
            new = [t for t in subscription.topics if t not in self._by_topic]
            for topic in subscription.topics:
                self._by_topic.setdefault(topic, set()).add(subscription)
        subscription._on_close.append(lambda: self.remove(subscription))
        return new

    def remove(self, subscription: Subscription) -> None:
        with self._lock:
            for topic in subscription.topics:
                followers = self._by_topic.get(topic)
                if followers is not None:
                    followers.discard(subscription)
                    if not followers:
                        del self._by_topic[topic]

    def topics(self) -> list[str]:
        with self._lock:
            return list(self._by_topic)

    def deliver(self, event: Event) -> None:
        with self._lock:
            followers = list(self._by_topic.get(event.topic, ()))
        for subscription in followers:
            subscription.offer(event)

    def end_all(self, reason: str) -> None:
        """End every subscription (the broker went away): their streams close cleanly."""
        with self._lock:
            everyone = {s for followers in self._by_topic.values() for s in followers}
            self._by_topic.clear()
        for subscription in everyone:
            subscription.end(reason)


def merge_replay(events: Iterable[Event]) -> list[Event]:
    """Order replayed events of several topics by entry id, i.e. roughly by publish time."""
    return sorted(events, key=lambda e: e.position.entry)


class Broker(ABC):
    """A backend: publishes to a topic's log and subscribes from positions in logs."""

    #: True when every worker and host sees every event (False for the in-process broker).
    shared: bool = True

    @abstractmethod
    def publish(self, topic: str, data: str, event: str | None = None) -> Position:
        """Append an event to *topic*'s log and return its position."""

    @abstractmethod
    def positions(self, topics: Iterable[str]) -> dict[str, Position]:
        """The current end of each topic's log: subscribing from there replays nothing."""

    @abstractmethod
    def subscribe(
        self, start: Mapping[str, Position | None], *, queue_size: int = 1024
    ) -> Subscription:
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
