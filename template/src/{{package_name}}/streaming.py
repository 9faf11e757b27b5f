"""What every streaming endpoint shares: framing, pacing, limits, headers and input checks.

A streamed response sends its status line and headers before the first chunk of the body.
Everything that shapes them (the status, the session cookie, caching and buffering headers)
must therefore be settled in the view, before it returns; the helpers here make that the
easy path.

An endpoint describes *what* to send as an iterator of `Event` and `Pause` items;
`event_stream` decides *how*: the first byte at once, heartbeats while the source is quiet,
a lifetime cap, an end with a reconnection hint on shutdown, a cap on the streams one
worker holds open, and a bound on how long a client that stops reading can hold one. Each
stream is counted for the metrics, and its end logged, by its `metrics.StreamAccount`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple, NoReturn

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from . import metrics, sse
from .metrics import Ended, Refused, StreamAccount

StreamFormat = Literal["sse", "ndjson", "text"]

MEDIA_TYPES: Mapping[StreamFormat, str] = {
    "sse": "text/event-stream",
    "ndjson": "application/x-ndjson",
    "text": "text/plain",
}

# Written while a stream has nothing to say. An SSE comment is ignored by EventSource;
# NDJSON and line-oriented text readers skip blank lines.
HEARTBEATS: Mapping[StreamFormat, str] = {
    "sse": sse.format_comment("keep-alive"),
    "ndjson": "\n",
    "text": "\n",
}

# Plain ASCII decimals only: int() and float() also accept "1_000", " 7 ", "nan" and "inf".
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_NUMBER = re.compile(r"-?[0-9]{1,18}(\.[0-9]{1,18})?")

# One encoder for every record, refusing NaN and Infinity: JSON has no such values, and
# JSON.parse() in a browser rejects the whole line.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

# Set once, when the server asks this process to stop (deploy/gunicorn.conf.py does it on
# SIGTERM). Every open stream then ends at once with a reconnection hint, instead of being
# cut when gunicorn's graceful_timeout runs out. Under gevent, gunicorn patches threading
# before the app is imported, so this is a gevent event there.
shutting_down = threading.Event()

# Pauses are added up in floating point: a schedule that ends within a millisecond of the
# lifetime cap is taken to end on it.
_SLACK = 0.001

# A C struct timeval (seconds, microseconds), as SO_SNDTIMEO takes it.
_TIMEVAL = struct.Struct("ll")

# Where a request keeps its place among the worker's open streams (see `admit`): the WSGI
# environ is the request's own, where flask.g may be shared by requests of one thread.
_PLACE = f"{__name__}.place"


@dataclass(frozen=True)
class Endpoint:
    """A streaming endpoint: its blueprint (whose view is named ``stream``), format and source.

    The source is ``ticks`` (events computed in the request) or ``channel`` (published ones).
    """

    blueprint: Blueprint
    format: StreamFormat
    source: str = "ticks"

    @property
    def view(self) -> str:
        """The endpoint name to pass to ``url_for``."""
        return f"{self.blueprint.name}.stream"


# Event, Pause and Encoded are made for every item a stream sends: as named tuples they
# cost a third of what frozen dataclasses do to build, and are as immutable.


class Event(NamedTuple):
    """One event to send: a JSON-ready record (a line of text for text streams).

    *id* and *event* are SSE fields; the other formats ignore them.
    """

    data: object
    id: str | None = None
    event: str | None = None


class Pause(NamedTuple):
    """Nothing to send for *seconds*, counted from the end of the previous pause.

    The stream stays alive meanwhile: heartbeats go out, and a shutdown or the lifetime cap
    ends the wait at once. Pauses keep a steady cadence: time spent producing an event does
    not add to the next pause. A source that blocks by itself (a queue) should block for at
    most a second at a time and yield ``Pause(0)`` when nothing came: its heartbeats are
    sent all the same.
    """

    seconds: float


class Encoded(NamedTuple):
    """A chunk already encoded for the stream's format, sent as it is.

    For events encoded once and written to many streams (see channels.py): the stream adds
    nothing, not even an id, and counts no event in it: its maker does (see
    `metrics.StreamAccount.framed`).
    """

    text: str


Source = Iterable[Event | Encoded | Pause]


@dataclass(frozen=True)
class StreamSettings:
    """The app's stream settings, checked by ``check_settings`` at start-up."""

    heartbeat: float
    retry_ms: int
    max_seconds: float
    max_open: int
    send_timeout: float

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> StreamSettings:
        """Read and check the ``STREAM_*`` settings; a bad one raises ``RuntimeError``."""
        return cls(
            heartbeat=positive_seconds(config, "STREAM_HEARTBEAT_SECONDS"),
            retry_ms=_whole(config, "STREAM_RETRY_MS", low=0),
            max_seconds=positive_seconds(config, "STREAM_MAX_SECONDS"),
            max_open=_whole(config, "STREAM_MAX_OPEN", low=1),
            send_timeout=positive_seconds(config, "STREAM_SEND_TIMEOUT_SECONDS"),
        )


def positive_seconds(config: Mapping[str, object], name: str) -> float:
    """The setting *name*, a finite number of seconds above 0; ``RuntimeError`` otherwise."""
    value = config[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise RuntimeError(f"{name} must be a positive number of seconds, not {value!r}")
    if math.isinf(value):
        raise RuntimeError(f"{name} must be a finite number of seconds, not {value!r}")
    return float(value)


def _whole(config: Mapping[str, object], name: str, *, low: int) -> int:
    value = config[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RuntimeError(f"{name} must be a whole number of at least {low}, not {value!r}")
    return value


class OpenStreams:
    """Counts the streams this process holds open, up to a fixed number.

    Each open stream holds a gthread thread (or a gevent greenlet) for as long as its client
    listens. Without a cap, a handful of long streams takes every thread and the worker stops
    answering anything else; with it, the next stream is turned away before it starts (see
    `refuse`), and ordinary requests still find a thread.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._lock = threading.Lock()

    def try_open(self) -> bool:
        """Take a place if one is free."""
        with self._lock:
            if self.count >= self.limit:
                return False
            self.count += 1
            return True

    def close(self) -> None:
        """Give a place back (the stream ended or its client left)."""
        with self._lock:
            self.count -= 1


class _Place:
    """One request's place among the worker's open streams, given back exactly once.

    It holds the account of the stream (see `metrics.StreamAccount`), which counts from the
    moment a response streams with the place to the moment the place is given back.
    """

    def __init__(self, open_streams: OpenStreams, account: StreamAccount) -> None:
        self._open_streams = open_streams
        self._held = True
        self.account = account
        # Set once a response streams with it: from then on the response gives it back.
        self.streaming = False

    def stream(self) -> None:
        """A response streams with this place: its account starts counting."""
        self.streaming = True
        self.account.start()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._open_streams.close()
            if self.streaming:
                self.account.end()


def init_app(app: Flask) -> None:
    """Check the stream settings and give *app* its open-stream counter."""
    settings = StreamSettings.from_config(app.config)
    app.extensions["open_streams"] = OpenStreams(settings.max_open)
    app.teardown_request(_release_unused_place)


def admit(stream_format: StreamFormat) -> None:
    """Take this request's place among the worker's open streams, or turn the request away.

    Call it in the view before work that only a stream needs: a channel endpoint calls it
    before subscribing, so a refused request costs no history read. `event_stream` and
    `stream_response` call it too; a request holds one place however often it asks. The
    place is given back when the response is closed, or when the request ends without
    streaming (a 400 found later, an exception). With every place taken, or once a shutdown
    has begun, the request is refused (see `refuse`).
    """
    if _PLACE in request.environ:
        return
    if shutting_down.is_set():
        metrics.stream_refused(Refused.SHUTDOWN)
        refuse(stream_format, "server restarting")
    open_streams: OpenStreams = current_app.extensions["open_streams"]
    if not open_streams.try_open():
        metrics.stream_refused(Refused.CAP)
        refuse(stream_format, f"this server holds {open_streams.limit} open streams, its limit")
    request.environ[_PLACE] = _Place(open_streams, StreamAccount(metrics.endpoint_label()))


def current_stream() -> StreamAccount:
    """The account of the stream the current request sends (after `admit`)."""
    place: _Place = request.environ[_PLACE]
    return place.account


def _release_unused_place(_error: BaseException | None) -> None:
    """Give back a place taken by a request that ended without streaming with it."""
    place: _Place | None = request.environ.get(_PLACE)
    if place is not None and not place.streaming:
        place.release()


def refuse(stream_format: StreamFormat, reason: str) -> NoReturn:
    """Turn a stream away before it starts, telling its client to come back later.

    EventSource gives up for good on any answer but a 200 ``text/event-stream`` (and a page
    cannot read ``Retry-After``), so an SSE client gets a 200 whose whole body is *reason*
    as a comment and a ``retry:`` hint; it reconnects by itself, with its Last-Event-ID.
    Other clients get a 503 with ``Retry-After`` and ``{"error": reason}``. Both delays have
    a random part: clients turned away at the same moment (a restart, the broker lost) do
    not all come back at the same moment.
    """
    delay_ms = jittered(current_app.config["STREAM_RETRY_MS"])
    if stream_format == "sse":
        body = sse.format_comment(f"{reason}: reconnect") + sse.format_retry(delay_ms)
        abort(_stream_headers(Response(body, mimetype=MEDIA_TYPES["sse"])))
    raise ServiceUnavailable(
        f"{reason}: retry later", retry_after=max(1, math.ceil(delay_ms / 1000))
    )


def jittered(retry_ms: int) -> int:
    """*retry_ms* plus a random part of up to as much again: spreads many clients' returns."""
    return retry_ms + secrets.randbelow(retry_ms + 1)


def event_stream(
    source: Source, stream_format: StreamFormat, *, end: Event | None = None
) -> Response:
    """Stream the events of *source* in *stream_format*, sending *end* when it is exhausted.

    Call it in the view, as its last step: it reads the settings and takes this worker's
    place for the stream now (see `admit`), while the client can still be turned away.
    *source* must be wrapped by ``stream_with_context`` when it reads ``request``,
    ``session`` or ``g``.
    """
    settings = StreamSettings.from_config(current_app.config)
    _admit_or_close(source, stream_format)
    chunks = _pump(iter(source), stream_format, settings, end, current_stream())
    return stream_response(chunks, stream_format)


def _admit_or_close(unstarted: object, stream_format: StreamFormat) -> None:
    """`admit`; a refused stream's *unstarted* source is closed, releasing its context now."""
    try:
        admit(stream_format)
    except HTTPException:
        close = getattr(unstarted, "close", None)
        if close is not None:
            close()
        raise


# One loop, not two generators: a hop from one generator to the next costs each event.
def _pump(
    source: Iterator[Event | Encoded | Pause],
    stream_format: StreamFormat,
    settings: StreamSettings,
    end: Event | None,
    account: StreamAccount,
) -> Iterator[str]:
    """The chunks of the response: what *source* says, plus everything that keeps it alive.

    Each chunk is counted in *account* once the server has taken it, and *account* is told
    why the stream ends, when this knows: a client that leaves is noticed by the server.
    """
    heartbeat = HEARTBEATS[stream_format]
    try:
        # Several proxies and platforms forward nothing, not even the headers, until the first
        # body byte: send one at once. For SSE it is the reconnection time.
        first = sse.format_retry(settings.retry_ms) if stream_format == "sse" else heartbeat
        yield first
        started = last_write = scheduled = now = time.monotonic()
        account.wrote(first, started)
        deadline = started + settings.max_seconds
        # A source that never pauses is cut one heartbeat interval past the deadline at the
        # latest, so that an event due right at the deadline still goes out.
        cutoff = deadline + settings.heartbeat
        while True:
            # Checked before asking the source for more, so that no event is taken and dropped.
            if now >= cutoff or shutting_down.is_set():
                break
            item = next(source, None)
            if item is None:
                # A channel's source has said why it ended, if it was cut short: that stands.
                account.ending(Ended.COMPLETE)
                if end is not None:
                    chunk = frame(end, stream_format)
                    yield chunk
                    account.wrote(chunk, time.monotonic())
                return
            if not isinstance(item, Pause):
                chunk = frame(item, stream_format)
                yield chunk
                now = last_write = time.monotonic()
                account.wrote(chunk, now, isinstance(item, Event))
                continue
            # A pause ends at its place in the schedule, or at the deadline, whichever is first.
            now = time.monotonic()
            scheduled = max(scheduled + item.seconds, now)
            if scheduled == now <= deadline and now - last_write < settings.heartbeat:
                # Already due, and no heartbeat either (events back to back, or a source that
                # waits by itself): the next item at once. Every item passes here, so it costs
                # as little as it can.
                continue
            last_write = yield from _wait(
                min(scheduled, deadline), last_write, heartbeat, settings, account
            )
            if scheduled > deadline + _SLACK:
                break
            now = time.monotonic()
        # Cut short by a shutdown or by the lifetime cap: tell the client to come back. An
        # EventSource reconnects by itself, with Last-Event-ID; the random part spreads the
        # reconnections of many clients after a restart.
        stopping = shutting_down.is_set()
        account.ending(Ended.SHUTDOWN if stopping else Ended.LIFETIME)
        if stream_format == "sse":
            reason = "server restarting" if stopping else "stream lifetime reached"
            hint = sse.format_comment(f"{reason}: reconnect") + sse.format_retry(
                jittered(settings.retry_ms)
            )
            yield hint
            account.wrote(hint, time.monotonic())
    except Exception:
        account.ending(Ended.ERROR)
        raise
    finally:
        # Ends the endpoint's generator too, so its finally block runs.
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _wait(
    until: float,
    last_write: float,
    heartbeat: str,
    settings: StreamSettings,
    account: StreamAccount,
) -> Generator[str, None, float]:
    """Wait until *until* (a ``time.monotonic()``), or a shutdown, writing *heartbeat*
    whenever the stream was silent for the heartbeat interval (counted in *account*);
    return when it last wrote."""
    while True:
        silent_for = time.monotonic() - last_write
        if silent_for >= settings.heartbeat:
            # Also how a departed client is noticed: only a write can fail. The first write
            # after the client left usually still succeeds (the kernel takes it), so its
            # worker is freed after up to two heartbeat intervals, not one. Checked first, so
            # that a source that waits by itself and yields Pause(0) when nothing came gets
            # its heartbeats too.
            yield heartbeat
            last_write = time.monotonic()
            account.heartbeat(heartbeat, last_write)
            continue
        left = until - time.monotonic()
        if left <= 0 or shutting_down.wait(min(left, settings.heartbeat - silent_for)):
            return last_write


def frame(event: Event | Encoded, stream_format: StreamFormat) -> str:
    """Encode *event* as one chunk of *stream_format*."""
    if isinstance(event, Encoded):
        return event.text
    if stream_format == "sse":
        if isinstance(event.data, str):
            return sse.format_event(event.data, event=event.event, id=event.id)
        return sse.format_json_event(event.data, event=event.event, id=event.id)
    if stream_format == "ndjson":
        return ndjson_line(event.data)
    return text_line(str(event.data))


def stream_response(chunks: Iterable[str], stream_format: StreamFormat) -> Response:
    """Wrap *chunks* in a response that no cache or proxy holds back or rewrites.

    Takes this request's place among the worker's open streams (see `admit`), given back
    when the server closes the response; a refused stream's *chunks* is closed unread.
    *chunks* must already be wrapped by ``stream_with_context`` when it reads ``request``,
    ``session`` or ``g``: the response is iterated after the view has returned.
    """
    settings = StreamSettings.from_config(current_app.config)
    _admit_or_close(chunks, stream_format)
    place: _Place = request.environ[_PLACE]
    # Only gunicorn hands its socket to the app; under other servers writes are unbounded.
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        chunks = _bounded_writes(chunks, sock, settings.send_timeout, place.account)
    response = _stream_headers(Response(chunks, mimetype=MEDIA_TYPES[stream_format]))
    place.stream()
    response.call_on_close(place.release)
    return response


def _stream_headers(response: Response) -> Response:
    """Set the headers every stream needs, refusals included, on *response*."""
    # A live stream must not be stored (no-cache would still allow it, next to a Set-Cookie)
    # nor compressed or rewritten by an intermediary.
    response.headers["Cache-Control"] = "no-store, no-transform"
    # Browsers must take the media type as sent: a text/plain stream is never sniffed as HTML.
    response.headers["X-Content-Type-Options"] = "nosniff"
    # nginx stops buffering a response that carries this header (and does not pass it on).
    response.headers["X-Accel-Buffering"] = "no"
    # No "Connection: keep-alive" here: it is hop-by-hop, WSGI forbids it and HTTP/2 rejects it.
    return response


def _bounded_writes(
    chunks: Iterable[str], sock: socket.socket, seconds: float, account: StreamAccount
) -> Generator[str, None, None]:
    """*chunks*, each written within *seconds* or not at all: a client that reads nothing
    is dropped, and its thread and place come back.

    A stream checks its lifetime, heartbeats and a shutdown between writes. Once a client
    stops reading and the socket buffers are full, gunicorn waits inside a write and none
    of those checks runs again: the client would hold its thread and its place for as long
    as it keeps the connection open. A timeout on the connection's socket ends that write
    with an error; gunicorn then closes the response, which runs the stream's clean-up and
    gives its place back. The timeout is the socket's only while the stream lasts, so the
    server's keep-alive waits keep their own.
    """
    iterator = iter(chunks)
    restore = _send_timeout(sock, seconds)
    finished = False
    handed = time.monotonic()
    try:
        for chunk in iterator:
            handed = time.monotonic()
            yield chunk
        finished = True
    finally:
        # The server closes the response when a write fails; one that failed after waiting
        # the whole timeout was to a client that read nothing.
        if not finished and time.monotonic() - handed >= seconds:
            account.ending(Ended.SEND_TIMEOUT)
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
        with contextlib.suppress(OSError):  # the connection is gone already
            if finished:
                restore()
            else:
                # Cut short: a write failed (it timed out, or the client left), and the
                # connection is done for. Shut now, it spares the server waiting for the
                # client to close its end (gthread waits up to 2 s, in the thread that
                # accepts connections), which a client that reads nothing never does.
                sock.shutdown(socket.SHUT_RDWR)


def _send_timeout(sock: socket.socket, seconds: float) -> Callable[[], None]:
    """Bound each write to *sock* by *seconds*; return what puts the socket back as it was.

    A blocking socket (gthread) gets the kernel's own send timeout: Python's settimeout()
    would make every write wait in poll() before it sends, a system call per event. A
    write that times out fails with ``BlockingIOError``. gevent's sockets never block in
    the kernel (gevent waits in its loop), so there the socket's timeout bounds that wait.
    """
    if os.get_blocking(sock.fileno()):
        previous = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _TIMEVAL.size)
        whole = int(seconds)
        timeval = _TIMEVAL.pack(whole, int((seconds - whole) * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        return lambda: sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, previous)
    before = sock.gettimeout()
    sock.settimeout(seconds)
    return lambda: sock.settimeout(before)


def end_of_stream() -> Response:
    """``204 No Content``: how a server tells EventSource to stop reconnecting."""
    response = Response(status=204)
    # There is no body, so no media type either.
    del response.headers["Content-Type"]
    return response


def ndjson_line(record: object) -> str:
    """Encode *record* as one line of newline-delimited JSON.

    JSON escapes line breaks inside strings, so a record is always exactly one line. NaN and
    Infinity raise ``ValueError``: they are not JSON and browsers refuse them.
    """
    try:
        return _JSON.encode(record) + "\n"
    except ValueError as error:
        raise ValueError(f"a stream record must be valid JSON: {error}") from None


def text_line(text: str) -> str:
    """Frame *text* as one line of a plain-text stream; a line break inside would split it."""
    if "\n" in text or "\r" in text:
        raise ValueError(f"a text stream line cannot contain a line break: {text!r}")
    return text + "\n"


def error_response(status: int, message: str) -> Response:
    """``{"error": message}`` as JSON, with *status*: the one form of every error answer.

    The app's error handler (see ``create_app``) answers every HTTP error with it, and so
    does a view that builds an error answer of its own, so clients parse one form.
    """
    response = jsonify(error=message)
    response.status_code = status
    return response


def reject(message: str) -> NoReturn:
    """End the request with ``400 Bad Request`` and a JSON ``{"error": message}`` body.

    Call it only in the view, before streaming starts: once the first chunk is out, the
    status is sent and an error can only cut the stream short.
    """
    abort(400, description=message)


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

    The ticks endpoints number their events 0, 1, 2, ...; a reconnecting browser sends the
    last number it received, and the stream resumes after it. Anything that is not such a
    number is a 400: guessing would silently replay or skip events.
    """
    raw = request.headers.get("Last-Event-ID", "")
    if raw == "":
        return None
    if not _INTEGER.fullmatch(raw) or not 0 <= int(raw) <= high:
        reject(f"Last-Event-ID must be an event number from 0 to {high}")
    return int(raw)
