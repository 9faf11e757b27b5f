"""The in-process broker: one process, a bounded history per topic, nothing to install.

Good for ``flask run``, tests and a single gunicorn worker. Events never leave the process,
so two workers (or two hosts) would each see only their own publishes: the generated
gunicorn.conf.py refuses to start more than one worker with it.
"""

from __future__ import annotations

import bisect
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ._base import (
    START,
    Broker,
    Event,
    Fanout,
    LogRead,
    MergedReads,
    Position,
    Subscription,
)


@dataclass
class _Log:
    """One topic's history: its readable events are ``events[first:]``, oldest first."""

    events: list[Event] = field(default_factory=list)
    first: int = 0
    # The id of the last event trimmed from the front (START: none yet).
    trimmed: tuple[int, int] = START

    def last(self) -> tuple[int, int]:
        return self.events[-1].position.entry if self.events else START


class MemoryBroker(Broker):
    """Publish and subscribe inside this process, with *history* events kept per topic."""

    shared = False

    def __init__(
        self,
        *,
        history: int,
        queue_size: int,
        tick_seconds: float,
        replay_limit: int,
        merge_reads: bool = True,
    ) -> None:
        self._history = history
        self.replay_limit = replay_limit
        self.merge_reads = merge_reads
        self._merged = MergedReads()
        self._lock = threading.Lock()
        self._logs: dict[str, _Log] = {}
        # One epoch for every log of this process: ids from before a restart get a reset,
        # not a wrong resume.
        self._epoch = secrets.token_hex(4)
        # Entry ids are "0-<n>", n counting the events of every topic: ids order them all
        # in publish order, as Redis's do.
        self._count = 0
        self._fanout = Fanout(feed_size=queue_size, tick=tick_seconds)

    def publish_many(self, topic: str, events: Sequence[tuple[str, str | None]]) -> list[Position]:
        # One lock orders publishing, replay and registration: a subscriber is either
        # registered before an event (and gets it live) or replays it, never both or neither.
        with self._lock:
            log = self._logs.setdefault(topic, _Log())
            after = log.last()
            items = []
            for data, event in events:
                self._count += 1
                items.append(Event(topic, Position(self._epoch, (0, self._count)), data, event))
            log.events += items
            if len(log.events) - log.first > self._history:
                trimmed = len(log.events) - log.first - self._history
                log.trimmed = log.events[log.first + trimmed - 1].position.entry
                log.first += trimmed
                if log.first >= self._history:
                    # Dropped in blocks, so that publishing costs O(1) on average.
                    log.events, log.first = log.events[log.first :], 0
            self._fanout.deliver(topic, items, after)
        return [item.position for item in items]

    def positions(self, topics: Iterable[str]) -> dict[str, Position]:
        with self._lock:
            return {topic: self._end(topic) for topic in topics}

    def _end(self, topic: str) -> Position:
        log = self._logs.get(topic)
        return Position(self._epoch, START if log is None else log.last())

    def subscribe(self, start: Mapping[str, Position | None]) -> Subscription:
        with self._lock:
            ends = {topic: self._end(topic) for topic in start}
            subscription = Subscription(
                {topic: position or ends[topic] for topic, position in start.items()},
                self._replay(start),
            )
            # A new feed gets every event published after the log's current end.
            self._fanout.add(subscription, ends)
        return subscription

    def _read(self, start: Mapping[str, Position], size: int) -> dict[str, LogRead]:
        with self._lock:
            return {topic: self._read_log(topic, p, size) for topic, p in start.items()}

    def _read_log(self, topic: str, position: Position, size: int) -> LogRead:
        log = self._logs.get(topic, _Log())
        at = bisect.bisect_left(
            log.events, position.entry, lo=log.first, key=lambda e: e.position.entry
        )
        return LogRead(
            epoch=self._epoch,
            last=log.last(),
            trimmed=log.trimmed,
            earlier=at > log.first,
            # Copies: the encodings a replaying stream makes are its own, dropped once sent,
            # not kept with the history.
            entries=[event.fresh() for event in log.events[at : at + size + 1]],
        )

    def check(self) -> None:
        """Always reachable: it lives in this process."""

    def close(self) -> None:
        self._fanout.close()
        self._fanout.end_all("the server is shutting down")
