"""Helpers shared by the streaming endpoints: response headers, framing, pacing, input checks.

A streamed response sends its status line and headers before the first chunk of the body.
Everything that shapes them (the status, the session cookie, caching and buffering headers)
must therefore be settled in the view, before it returns; the helpers here make that the
easy path.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Literal, NoReturn

from flask import Response, abort, request

from . import sse

StreamFormat = Literal["sse", "ndjson", "text"]

MEDIA_TYPES: Mapping[StreamFormat, str] = {
    "sse": "text/event-stream",
    "ndjson": "application/x-ndjson",
    "text": "text/plain",
}

# Plain ASCII decimals only: int() and float() also accept "1_000", " 7 ", "nan" and "inf".
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_NUMBER = re.compile(r"-?[0-9]{1,18}(\.[0-9]{1,18})?")

# Written while a stream has nothing to say. An SSE comment is ignored by EventSource;
# NDJSON and line-oriented text readers skip blank lines.
HEARTBEATS: Mapping[StreamFormat, str] = {
    "sse": sse.format_comment("keep-alive"),
    "ndjson": "\n",
    "text": "\n",
}


def stream_response(chunks: Iterable[str], stream_format: StreamFormat) -> Response:
    """Wrap *chunks* in a response that no cache or proxy holds back.

    *chunks* must already be wrapped by ``stream_with_context`` when it reads ``request``,
    ``session`` or ``g``: the response is iterated after the view has returned.
    """
    response = Response(chunks, mimetype=MEDIA_TYPES[stream_format])
    # A live stream must not be stored or replayed by a cache.
    response.headers["Cache-Control"] = "no-cache"
    # nginx stops buffering a response that carries this header (and does not pass it on).
    response.headers["X-Accel-Buffering"] = "no"
    # No "Connection: keep-alive" here: it is hop-by-hop, WSGI forbids it and HTTP/2 rejects it.
    return response


def ndjson_line(record: object) -> str:
    """Encode *record* as one line of newline-delimited JSON.

    ``json.dumps`` escapes line breaks inside strings, so a record is always exactly one line.
    """
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def text_line(text: str) -> str:
    """Frame *text* as one line of a plain-text stream; a line break inside would split it."""
    if "\n" in text or "\r" in text:
        raise ValueError(f"a text stream line cannot contain a line break: {text!r}")
    return text + "\n"


def wait_with_heartbeats(seconds: float, *, every: float, beat: str) -> Iterator[str]:
    """Wait *seconds*, yielding *beat* each time *every* seconds pass in silence.

    A generator that sleeps (or blocks on a queue) cannot notice that its client has gone:
    the server only finds out when a write fails, and then ends the generator with
    ``GeneratorExit`` at its next ``yield``. Each beat is such a write, so a departed client
    frees its worker within *every* seconds, and proxies see traffic before their read timeout.
    Under gevent ``time.sleep`` yields to other greenlets; under gthread it blocks only this
    stream's thread.
    """
    if every <= 0:
        raise ValueError(f"the heartbeat interval must be positive, not {every!r}")
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if remaining <= every:
            time.sleep(remaining)
            return
        time.sleep(every)
        yield beat


def reject(message: str) -> NoReturn:
    """End the request with ``400 Bad Request`` and a JSON ``{"error": message}`` body.

    Call it only in the view, before streaming starts: once the first chunk is out, the
    status is sent and an error can only cut the stream short.
    """
    body = json.dumps({"error": message})
    abort(Response(body, status=400, mimetype="application/json"))


def int_arg(name: str, *, default: int, low: int, high: int) -> int:
    """Read an integer query parameter within ``[low, high]``; anything else is a 400."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw) or not low <= int(raw) <= high:
        reject(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def float_arg(name: str, *, default: float, low: float, high: float) -> float:
    """Read a decimal query parameter within ``[low, high]``; "nan", "inf" and junk are a 400."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _NUMBER.fullmatch(raw) or not low <= float(raw) <= high:
        reject(f"{name} must be a number from {low:g} to {high:g}")
    return float(raw)


def str_arg(name: str, *, default: str, max_length: int) -> str:
    """Read a one-line text query parameter of at most *max_length* characters."""
    value = request.args.get(name, default)
    if not value or len(value) > max_length or not value.isprintable():
        reject(f"{name} must be 1 to {max_length} printable characters")
    return value


def last_event_id(*, high: int) -> int | None:
    """Read the ``Last-Event-ID`` header that EventSource sends when it reconnects.

    The endpoints here number their events 0, 1, 2, ...; a reconnecting browser sends the
    last number it received, and the stream resumes after it. Anything that is not such a
    number is a 400: guessing would silently replay or skip events.
    """
    raw = request.headers.get("Last-Event-ID", "")
    if raw == "":
        return None
    if not _INTEGER.fullmatch(raw) or not 0 <= int(raw) <= high:
        reject(f"Last-Event-ID must be an event number from 0 to {high}")
    return int(raw)
