"""Server-Sent Events encoding, to the letter of the WHATWG HTML specification.

Every function returns the text of one complete block (ending in a blank line for events),
ready to be yielded from a streaming response. Only the standard library is used, so the
module can be copied into any project.

The rules that naive encoders get wrong, and that this module enforces:

* A payload with line breaks becomes several ``data:`` lines. Lines break at CRLF, LF and CR
  and nowhere else: ``str.splitlines()`` also splits at U+2028, VT, FF and others, which the
  browser treats as ordinary characters.
* ``event`` and ``id`` cannot carry a line break (it would end the field early and inject
  whatever follows as a new field), and an ``id`` containing NUL is ignored by the browser.
  Both raise ``ValueError`` instead of sending something the client reads differently.
* An id of ``"0"`` is a real id, and so is an empty one (it resets the client's last id).
* ``retry`` is honoured only when it is ASCII digits: it must be a non-negative ``int``.
* The stream is UTF-8: a string with a lone surrogate cannot be sent and raises ``ValueError``.
* JSON payloads are real JSON: ``NaN`` and ``Infinity``, which ``json.dumps`` writes by
  default and ``JSON.parse`` in the browser rejects, raise ``ValueError``.
"""

from __future__ import annotations

import json
import re

__all__ = ["format_comment", "format_event", "format_json_event", "format_retry"]

# The only line terminators of the event-stream grammar.
_LINE_BREAK = re.compile(r"\r\n|[\r\n]")

# One encoder for every event: json.dumps() with options builds a new one on each call.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def format_event(
    data: str,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> str:
    """Encode one event: optional ``event``, ``id`` and ``retry`` fields, then its data.

    The browser dispatches it as a ``MessageEvent`` whose ``data`` equals *data* exactly,
    whose type is *event* (``"message"`` when omitted or empty) and whose ``lastEventId``
    is *id* (or the previous id when *id* is ``None``).
    """
    head = _head(event, id, retry)
    _check_utf8("data", data)
    if "\n" in data or "\r" in data:
        lines = "".join(_field("data", line) for line in _LINE_BREAK.split(data))
        return f"{head}{lines}\n"
    return f"{head}{_field('data', data)}\n"


def format_json_event(
    payload: object,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> str:
    """Encode *payload* as compact JSON in a single ``data:`` line.

    JSON escapes line breaks inside strings, so the data never needs splitting; the client
    reads it back with ``JSON.parse(event.data)``.
    """
    try:
        data = _JSON.encode(payload)
    except ValueError as error:
        raise ValueError(f"an SSE JSON payload must be valid JSON: {error}") from None
    # ensure_ascii=False lets a lone surrogate through: check, as format_event does.
    _check_utf8("data", data)
    return f"{_head(event, id, retry)}data: {data}\n\n"


def format_comment(text: str = "") -> str:
    """Encode a comment: lines starting with ``:`` that the browser ignores.

    Comments are the heartbeat of a stream. They keep proxies from timing out an idle
    connection, and, since only a write can fail, they are how a server learns that the
    client has gone. Each line of *text* becomes its own comment line, so a line break
    in *text* can never turn the rest into a field.
    """
    _check_utf8("comment", text)
    return "".join(f": {line}\n" if line else ":\n" for line in _LINE_BREAK.split(text))


def format_retry(retry: int) -> str:
    """Encode a block that only sets the reconnection time, in milliseconds.

    It dispatches no event. Sent first, it tells EventSource how long to wait before
    reconnecting; sent last, before the server closes the stream on purpose, it asks the
    client to come back after that long (EventSource does, with ``Last-Event-ID``).
    """
    return f"{_head(None, None, retry)}\n"


def _head(event: str | None, id: str | None, retry: int | None) -> str:
    """The ``event``, ``id`` and ``retry`` lines of an event, checked."""
    head = ""
    if event is not None:
        head = _field("event", _single_line("event", event))
    if id is not None:
        if "\0" in id:
            raise ValueError("an SSE id cannot contain NUL: the browser would ignore it")
        head += _field("id", _single_line("id", id))
    if retry is not None:
        # bool is an int subclass, and "True" is not ASCII digits.
        if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
            raise ValueError(f"retry must be a non-negative int of milliseconds, not {retry!r}")
        head += f"retry: {retry}\n"
    return head


def _field(name: str, value: str) -> str:
    # The parser drops exactly one space after the colon, so a value that itself starts
    # with a space survives because one is always written.
    return f"{name}: {value}\n" if value else f"{name}:\n"


def _single_line(name: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"an SSE {name} cannot contain a line break: {value!r}")
    _check_utf8(name, value)
    return value


def _check_utf8(name: str, value: str) -> None:
    # isascii() is O(1) on CPython, so the common case costs nothing.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"the SSE {name} is not valid Unicode: {value!r}") from None
