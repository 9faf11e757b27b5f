"""The example endpoints' event source: numbered ticks, what a request may ask of them.

``GET <path>?count=N&interval=S&topic=T`` asks for *N* events *S* seconds apart, each
labelled *T*. Everything is checked in the view, before the stream starts: anything out of
range is a 400 with a message saying what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .streaming import float_arg, int_arg, last_event_id, reject, str_arg

MAX_COUNT = 1000
MAX_INTERVAL = 60.0
MAX_TOPIC_LENGTH = 64


@dataclass(frozen=True)
class Ticks:
    """What the request asked for, checked before the stream starts."""

    topic: str
    count: int
    interval: float
    # The first event to send: 0, or the one after Last-Event-ID when an EventSource resumes.
    start: int = 0

    @property
    def finished(self) -> bool:
        """Whether every event was already delivered (a resume after the last one)."""
        return self.start >= self.count

    @property
    def seconds(self) -> float:
        """How long the rest of the stream lasts: the pauses between its events."""
        return max(self.count - self.start - 1, 0) * self.interval


def read_ticks(*, resumable: bool = False) -> Ticks:
    """Check the query string (and ``Last-Event-ID`` when *resumable*); anything else is a 400.

    A request whose stream would outlast ``STREAM_MAX_SECONDS`` is refused too: ticks have a
    known length, so the client can be told now rather than cut off later.
    """
    last = last_event_id(high=MAX_COUNT - 1) if resumable else None
    ticks = Ticks(
        topic=str_arg("topic", default="ticks", max_length=MAX_TOPIC_LENGTH),
        count=int_arg("count", default=10, low=1, high=MAX_COUNT),
        interval=float_arg("interval", default=1.0, low=0.0, high=MAX_INTERVAL),
        start=0 if last is None else last + 1,
    )
    limit: float = current_app.config["STREAM_MAX_SECONDS"]
    if ticks.seconds > limit:
        reject(
            f"count and interval ask for a {ticks.seconds:g} s stream, "
            f"longer than the {limit:g} s limit: ask for fewer events or a shorter interval"
        )
    return ticks
