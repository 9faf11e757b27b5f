"""The in-process broker: one process, a bounded history per topic, nothing to install.

Good for ``flask run``, tests and a single gunicorn worker. Events never leave the process,
so two workers (or two hosts) would each see only their own publishes: the generated
gunicorn.conf.py refuses to start more than one worker with it.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ._base import (
    NO_EPOCH,
    Broker,
    Event,
    Fanout,
    Item,
    Position,
    PositionAhead,
    Reset,
    Subscription,
    merge_replay,
)


@dataclass
class _Log:
    """One topic's history: entry ids ``0-1``, ``0-2``, ... with no gaps, the oldest dropped."""

    epoch: str
    history: deque[Event]
    last: int = 0
    # The entries are numbered without gaps, so what was trimmed is exactly known.
    first_kept: int = field(default=1)


class MemoryBroker(Broker):
    """Publish and subscribe inside this process, with *history* events kept per topic."""

    shared = False

    def __init__(self, *, history: int, queue_size: int, tick_seconds: float) -> None:
        self._history = history
        self._lock = threading.Lock()
        self._logs: dict[str, _Log] = {}
        self._fanout = Fanout(feed_size=queue_size, tick=tick_seconds)

    def publish(self, topic: str, data: str, event: str | None = None) -> Position:
        # One lock orders publishing, replay and registration: a subscriber is either
        # registered before an event (and gets it live) or replays it, never both or neither.
        with self._lock:
            log = self._logs.get(topic)
            if log is None:
                # A fresh epoch per process: ids from before a restart get a reset, not a
                # wrong resume.
                log = self._logs[topic] = _Log(secrets.token_hex(4), deque(maxlen=self._history))
            log.last += 1
            item = Event(topic, Position(log.epoch, (0, log.last)), data, event)
            log.history.append(item)
            log.first_kept = log.history[0].position.entry[1]
            self._fanout.deliver(topic, [item])
        return item.position

    def positions(self, topics: Iterable[str]) -> dict[str, Position]:
        with self._lock:
            return {topic: self._end(topic) for topic in topics}

    def _end(self, topic: str) -> Position:
        log = self._logs.get(topic)
        return Position.start() if log is None else Position(log.epoch, (0, log.last))

    def subscribe(self, start: Mapping[str, Position | None]) -> Subscription:
        with self._lock:
            subscription = Subscription({topic: self._end(topic) for topic in start})
            replay: list[Event] = []
            reset: list[str] = []
            positions: dict[str, Position] = {}
            for topic, position in start.items():
                if position is None:
                    continue
                found = self._replay(topic, position)
                if found is None:
                    reset.append(topic)
                else:
                    positions[topic] = position
                    replay += found
            backlog: list[Item] = [Reset(tuple(reset))] if reset else []
            subscription.prime(positions, [*backlog, *merge_replay(replay)])
            self._fanout.add(subscription)
        return subscription

    def _replay(self, topic: str, position: Position) -> list[Event] | None:
        """Events after *position*, or None when some of them are gone (a reset is due)."""
        log = self._logs.get(topic)
        if log is None:
            # Nothing was ever published here (in this process): only a position taken
            # before the first entry is still valid.
            return [] if position.epoch == NO_EPOCH else None
        if position.epoch == NO_EPOCH:
            after = 0
        elif position.epoch != log.epoch:
            return None
        else:
            after = position.entry[1]
            if position.entry[0] != 0 or after > log.last:
                raise PositionAhead(f"{topic} has no entry {position.entry_id}")
        if after + 1 < log.first_kept:
            return None
        return [e for e in log.history if e.position.entry[1] > after]

    def check(self) -> None:
        """Always reachable: it lives in this process."""

    def close(self) -> None:
        self._fanout.close()
        self._fanout.end_all("the server is shutting down")
