"""A Server-Sent Events parser that follows the WHATWG HTML algorithm step by step.

The tests decode every event stream with it, so the encoder is checked against what a
browser does with the bytes rather than against the encoder's own idea of the format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE_BREAK = re.compile(r"\r\n|[\r\n]")


@dataclass(frozen=True)
class Event:
    """An event as EventSource dispatches it."""

    type: str
    data: str
    last_event_id: str


@dataclass
class ParsedStream:
    """Everything a client learns from a stream: events, comments, reconnection time."""

    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    last_event_id: str = ""


def parse(body: bytes) -> ParsedStream:
    """Parse a whole event stream as a browser would, up to its last complete line."""
    text = body.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines = _LINE_BREAK.split(text)
    lines.pop()  # Text after the last line break is an incomplete line: never processed.
    stream = ParsedStream()
    data = event_type = last_id = ""
    for line in lines:
        if line == "":
            # Dispatch: the id sticks even when there is no data to dispatch.
            stream.last_event_id = last_id
            if data:
                stream.events.append(Event(event_type or "message", data[:-1], last_id))
            data = event_type = ""
            continue
        if line.startswith(":"):
            stream.comments.append(line[1:].removeprefix(" "))
            continue
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            stream.retry = int(value)
    return stream
