"""``stream-scaffold probe``: is a deployed stream live, buffered or cut?

One ``GET`` with httpx (HTTP/1.1, or HTTP/2 when asked for and the server agrees), read for a
bounded time or number of events. Every chunk's arrival is timed on this side; the body is
split into events by its media type (SSE events, NDJSON or text lines, else raw chunks) and
heartbeats (SSE comments, blank lines) are told apart from events. The verdict compares the
events' arrival with the stream's own spacing:

* ``live``: events arrive spread out as the server sends them;
* ``buffered``: most events arrive in bursts after long silences, or all at the end, or
  nothing arrives within the time allowed while the connection stays open;
* ``cut``: the connection closed before the body was complete (e.g. a proxy timeout);
* ``not-a-stream``: the answer is no stream at all: an error status (with the app's own
  message, when it sends one), a body sent whole with a ``Content-Length``, or a page.

No Copier, no project: this works on any URL.
"""

from __future__ import annotations

import asyncio
import codecs
import itertools
import json
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import httpx

from ._errors import ScaffoldError

# Events closer together than this arrived in one burst: a proxy released them together.
BURST_GAP = 0.05
# A silence at least this long before a burst marks it as held back, not merely fast.
HELD_BACK = 0.5
# Fewer events than this arriving together may simply have been sent together (an event
# and the end marker); this many after a silence is a proxy releasing what it held.
MIN_BURST = 3
_COMPRESSED = ("gzip", "br", "deflate", "zstd", "compress")
_NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/stream+json")
# Documents, never streams: an answer of one of these types is a page, not a stream.
_DOCUMENT_TYPES = (
    "text/html",
    "application/xhtml+xml",
    "application/json",
    "application/problem+json",
    "application/xml",
    "text/xml",
)
# How much of an error answer is read for its message.
_ERROR_BODY_LIMIT = 64 * 1024
# The fields an error body names its message in: this template's and common APIs' own.
_ERROR_FIELDS = ("error", "message", "detail", "title")
T = TypeVar("T")


class Verdict(StrEnum):
    LIVE = "live"
    BUFFERED = "buffered"
    CUT = "cut"
    NOT_A_STREAM = "not-a-stream"


# Exit status per verdict: 0 only for live; 2 is kept for "could not probe".
EXIT_STATUS: Mapping[Verdict, int] = {
    Verdict.LIVE: 0,
    Verdict.BUFFERED: 1,
    Verdict.CUT: 3,
    Verdict.NOT_A_STREAM: 4,
}


@dataclass(frozen=True)
class ProbeOptions:
    """What to send and how long to listen."""

    headers: Mapping[str, str] = field(default_factory=dict)
    last_event_id: str | None = None
    timeout: float = 30.0
    max_events: int = 20
    http2: bool = False
    verify: bool = True


@dataclass(frozen=True)
class Arrival:
    """One event (or heartbeat) and when its last byte arrived, in seconds from the request."""

    at: float
    size: int
    heartbeat: bool = False


@dataclass
class ProbeResult:
    """Everything measured on one URL, and the verdict drawn from it."""

    url: str
    http_version: str
    status: int
    headers: dict[str, str]
    stream_format: str
    time_to_headers: float
    arrivals: list[Arrival]
    # "complete", "limit" (events or time), "closed" (cut short) or "unread" (not a stream)
    ended: str
    duration: float
    error: str | None = None
    verdict: Verdict = Verdict.LIVE
    reason: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def events(self) -> list[Arrival]:
        return [a for a in self.arrivals if not a.heartbeat]

    @property
    def time_to_first_event(self) -> float | None:
        events = self.events
        return events[0].at if events else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        data["time_to_first_event"] = self.time_to_first_event
        data["exit_status"] = EXIT_STATUS[self.verdict]
        return data


def stream_format(content_type: str) -> str:
    """``sse``, ``ndjson``, ``text`` or ``chunks`` for a Content-Type value."""
    media = content_type.partition(";")[0].strip().lower()
    if media == "text/event-stream":
        return "sse"
    if media in _NDJSON_TYPES:
        return "ndjson"
    if media.startswith("text/"):
        return "text"
    return "chunks"


class _Framer:
    """Splits decoded body text into events and heartbeats as it arrives."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.pending = ""
        self.event_lines = 0
        self.event_size = 0
        self.has_data = False

    def feed(self, text: str) -> list[tuple[int, bool]]:
        """Complete (size, is_heartbeat) records in *text* plus what came before."""
        if self.fmt == "chunks":
            return [(len(text), False)] if text else []
        self.pending += text
        records: list[tuple[int, bool]] = []
        while True:
            line, ending = _next_line(self.pending)
            if ending is None:
                return records
            self.pending = self.pending[len(line) + len(ending) :]
            records += self._line(line, len(line) + len(ending))

    def _line(self, line: str, size: int) -> list[tuple[int, bool]]:
        if self.fmt != "sse":
            return [(size, not line.strip())]
        if line == "":
            if self.event_lines:
                # Only a block with a data field is dispatched as an event; one with just
                # retry: or id: (or unknown fields) is control, counted like a heartbeat.
                record = (self.event_size + size, not self.has_data)
                self.event_lines = self.event_size = 0
                self.has_data = False
                return [record]
            return []
        if line.startswith(":"):
            return [(size, True)]
        self.event_lines += 1
        self.event_size += size
        self.has_data = self.has_data or line.partition(":")[0] == "data"
        return []


def _next_line(text: str) -> tuple[str, str | None]:
    """The first line of *text* and its ending (CRLF, LF or CR), or None when incomplete."""
    for index, char in enumerate(text):
        if char == "\n":
            return text[:index], "\n"
        if char == "\r":
            if index + 1 == len(text):
                return text, None  # a CR at the end may be half of a CRLF
            return text[:index], "\r\n" if text[index + 1] == "\n" else "\r"
    return text, None


async def _probe(url: str, options: ProbeOptions, progress: Callable[[str], None]) -> ProbeResult:
    headers = {"Accept": "text/event-stream, application/x-ndjson, */*", **options.headers}
    if options.last_event_id is not None:
        headers["Last-Event-ID"] = options.last_event_id
    timeout = httpx.Timeout(options.timeout, connect=min(options.timeout, 10.0))
    started = time.monotonic()
    deadline = started + options.timeout
    # Over TLS, HTTP/2 is negotiated (ALPN); in the clear there is no negotiation, so asking
    # for HTTP/2 means speaking it from the first byte (prior knowledge, "h2c").
    cleartext_h2 = options.http2 and url.startswith("http://")
    async with httpx.AsyncClient(
        http1=not cleartext_h2,
        http2=options.http2,
        verify=options.verify,
        timeout=timeout,
        follow_redirects=False,
    ) as client:
        progress("waiting for the response headers")
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                request = client.build_request("GET", url, headers=headers)
                response = await client.send(request, stream=True)
        except TimeoutError:
            raise ScaffoldError(
                f"{url}: no response headers within {options.timeout:g} s"
            ) from None
        except httpx.HTTPError as error:
            hint = ""
            if cleartext_h2 and not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
                hint = (
                    ": --http2 on an http:// URL speaks HTTP/2 from the first byte (prior "
                    "knowledge), which this server does not; leave --http2 out, or probe its "
                    "https:// address, where HTTP/2 is negotiated"
                )
            raise ScaffoldError(f"{url}: {_describe(error)}{hint}") from None
        try:
            if (why := _not_a_stream(response)) is not None:
                return await _document(url, response, why, started=started, deadline=deadline)
            return await _read(
                url,
                response,
                options=options,
                started=started,
                deadline=deadline,
                progress=progress,
            )
        finally:
            await response.aclose()


def _loop_time(deadline: float) -> float:
    """*deadline* on `time.monotonic` converted to the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())


def _new_result(url: str, response: httpx.Response, started: float) -> ProbeResult:
    """The result of *response* as far as its headers tell, before its body is read."""
    return ProbeResult(
        url=url,
        http_version=response.http_version,
        status=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        stream_format=stream_format(response.headers.get("content-type", "")),
        time_to_headers=round(time.monotonic() - started, 4),
        arrivals=[],
        ended="complete",
        duration=0.0,
    )


def _not_a_stream(response: httpx.Response) -> str | None:
    """Why *response* is no stream at all (an error, a body sent whole, a page), or None."""
    status = f"status {response.status_code} {response.reason_phrase}"
    if not 200 <= response.status_code < 300:
        return status
    if response.status_code in (204, 205):
        return f"{status}: no body (a 204 is how a server tells EventSource to stop)"
    media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if (length := response.headers.get("content-length")) is not None:
        return f"a {media or 'untyped'} body of {length} bytes, sent whole (Content-Length)"
    if media in _DOCUMENT_TYPES:
        return f"a {media} document, not a stream"
    return None


async def _document(
    url: str, response: httpx.Response, why: str, *, started: float, deadline: float
) -> ProbeResult:
    """The verdict on an answer that is not a stream; an error's own message is part of it."""
    result = _new_result(url, response, started)
    result.stream_format = "none"
    result.ended = "unread"
    if response.is_error and (message := await _error_message(response, deadline)):
        why = f"{why}: {message}"
    result.verdict = Verdict.NOT_A_STREAM
    result.reason = why
    result.duration = round(time.monotonic() - started, 4)
    return result


async def _error_message(response: httpx.Response, deadline: float) -> str | None:
    """The message of an error answer: a JSON body's ``error`` (or ``message``, ``detail``,
    ``title``) field, or a plain-text body's first line; None when there is none to read."""
    body = b""
    try:
        async with asyncio.timeout_at(_loop_time(deadline)):
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= _ERROR_BODY_LIMIT:
                    break
    except (TimeoutError, httpx.HTTPError):
        pass
    text = body[:_ERROR_BODY_LIMIT].decode("utf-8", errors="replace")
    media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    found: object = None
    if media == "application/json" or media.endswith("+json"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if isinstance(data, dict):
            found = next((data[k] for k in _ERROR_FIELDS if isinstance(data.get(k), str)), None)
    elif media == "text/plain":
        found = next((line for line in text.splitlines() if line.strip()), None)
    if not isinstance(found, str) or not found.strip():
        return None
    line = " ".join(found.split())
    return line if len(line) <= 200 else line[:199] + "…"


async def _read(
    url: str,
    response: httpx.Response,
    *,
    options: ProbeOptions,
    started: float,
    deadline: float,
    progress: Callable[[str], None],
) -> ProbeResult:
    result = _new_result(url, response, started)
    framer = _Framer(result.stream_format)
    decoder = _text_decoder()
    chunks = response.aiter_bytes()
    count = 0
    try:
        async with asyncio.timeout_at(_loop_time(deadline)):
            async for chunk in chunks:
                now = time.monotonic() - started
                for size, heartbeat in framer.feed(decoder(chunk)):
                    result.arrivals.append(Arrival(round(now, 4), size, heartbeat))
                    count += not heartbeat
                    if count >= options.max_events:
                        break
                progress(f"{count} event(s) after {now:.1f} s")
                if count >= options.max_events:
                    result.ended = "limit"
                    break
    except TimeoutError:
        result.ended = "limit"
    except httpx.HTTPError as error:
        result.ended = "closed"
        result.error = _describe(error)
    result.duration = round(time.monotonic() - started, 4)
    judge(result, options)
    return result


def _text_decoder() -> Callable[[bytes], str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode


def _describe(error: httpx.HTTPError) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0]


# ---------------------------------------------------------------------- verdict
def judge(result: ProbeResult, options: ProbeOptions) -> None:
    """Set the verdict, its one-line reason and the warnings of *result*."""
    result.warnings = _warnings(result)
    events = result.events
    if result.ended == "closed":
        result.verdict = Verdict.CUT
        last = result.arrivals[-1].at if result.arrivals else result.time_to_headers
        result.reason = (
            f"the connection closed before the stream's end after {len(events)} event(s), "
            f"{result.duration - last:.1f} s after the last data ({result.error})"
        )
        return
    if not events:
        if result.ended == "complete":
            result.verdict = Verdict.CUT
            result.reason = "the body ended without a single event"
        else:
            result.verdict = Verdict.BUFFERED
            beats = len(result.arrivals)
            result.reason = (
                f"no event arrived within {options.timeout:g} s"
                + (f" ({beats} heartbeat(s) did)" if beats else "")
                + ": held back on the way, or the stream was idle"
            )
        return
    gaps = _gaps(result)
    spacing = statistics.median(gaps)
    bursts = _bursts(gaps)
    held = sum(size for size, silence in bursts if size >= MIN_BURST and silence >= HELD_BACK)
    all_at_end = (
        result.ended == "complete"
        and len(bursts) == 1
        and len(events) >= MIN_BURST
        and events[0].at >= HELD_BACK
        and result.duration - events[-1].at < HELD_BACK
    )
    if all_at_end:
        result.verdict = Verdict.BUFFERED
        result.reason = (
            f"all {len(events)} events arrived together at the end of the stream, "
            f"{events[0].at:.2f} s after the request"
        )
    elif held * 2 >= len(events):
        result.verdict = Verdict.BUFFERED
        longest = max(silence for _, silence in bursts)
        result.reason = (
            f"{held} of {len(events)} events arrived in bursts of {MIN_BURST} or more "
            f"after silences of up to {longest:.2f} s"
        )
    else:
        result.verdict = Verdict.LIVE
        result.reason = (
            f"{len(events)} event(s) arrived one by one, {spacing:.2f} s apart (median); "
            f"first after {events[0].at:.2f} s"
        )


def _bursts(gaps: list[float]) -> list[tuple[int, float]]:
    """Events grouped by arrival: (events in the group, silence before it).

    Consecutive events less than `BURST_GAP` apart arrived together.
    """
    groups: list[tuple[int, float]] = []
    for gap in gaps:
        if groups and gap < BURST_GAP:
            size, silence = groups[-1]
            groups[-1] = (size + 1, silence)
        else:
            groups.append((1, gap))
    return groups


def _gaps(result: ProbeResult) -> list[float]:
    """Seconds between the request and the first event, then between consecutive events.

    Measured from the request, not the headers: a buffering proxy may hold those back too.
    """
    times = [0.0, *(e.at for e in result.events)]
    return [round(b - a, 4) for a, b in itertools.pairwise(times)]


def _warnings(result: ProbeResult) -> list[str]:
    headers = result.headers
    found: list[str] = []
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding and encoding != "identity":
        found.append(
            f"compressed ({encoding}): a compressing proxy or middleware may hold events back "
            "until its buffer fills; exclude streams from compression"
        )
    if "content-type" not in headers:
        found.append("no Content-Type: clients cannot tell the stream's format")
    cache = headers.get("cache-control", "").lower()
    if "no-cache" not in cache and "no-store" not in cache:
        found.append("no Cache-Control: no-cache: a cache on the way may store or hold the stream")
    # A Content-Length makes the answer no stream at all (see _not_a_stream).
    if result.http_version.startswith("HTTP/1") and "chunked" not in headers.get(
        "transfer-encoding", ""
    ):
        found.append(
            "no chunked framing: the body ends when the connection closes, "
            "so a cut cannot be told from the end of the stream"
        )
    if result.stream_format == "chunks":
        found.append(
            f"Content-Type {headers.get('content-type', '(none)')!r} is not a streaming format; "
            "some proxies (e.g. Cloudflare Tunnel) pass only text/event-stream live"
        )
    return found


# ---------------------------------------------------------------------- running
def probe(
    url: str, options: ProbeOptions, progress: Callable[[str], None] = lambda _: None
) -> ProbeResult:
    """Probe *url*; raise `ScaffoldError` when it cannot be reached or is not HTTP(S)."""
    if not url.startswith(("http://", "https://")):
        raise ScaffoldError(f"{url}: give an http:// or https:// URL")
    try:
        httpx.URL(url)
    except httpx.InvalidURL as error:
        raise ScaffoldError(f"{url}: {error}") from None
    return _run(lambda: asyncio.run(_probe(url, options, progress)))


def _run(action: Callable[[], T]) -> T:
    """Run *action* here, or in a thread of its own when an event loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return action()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(action())
        except BaseException as error:  # re-raised in the caller's thread
            failure.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def describe(result: ProbeResult, *, max_rows: int = 50) -> list[str]:
    """The human-readable report of *result*, line by line."""
    lines = [f"GET {result.url}  {result.http_version} {result.status}"]
    for name in (
        "content-type",
        "content-encoding",
        "cache-control",
        "x-accel-buffering",
        "transfer-encoding",
        "content-length",
    ):
        lines.append(f"  {name}: {result.headers.get(name, '-')}")
    lines.append(f"  format: {result.stream_format}")
    lines.append(f"  time to headers: {result.time_to_headers:.3f} s")
    if result.ended == "unread":
        lines.append(f"verdict: {result.verdict.value}: {result.reason}")
        return lines
    first = result.time_to_first_event
    lines.append(f"  time to first event: {'-' if first is None else f'{first:.3f} s'}")
    beats = len(result.arrivals) - len(result.events)
    lines.append(
        f"  events: {len(result.events)} and {beats} heartbeat(s) in {result.duration:.2f} s"
        f" (ended: {result.ended})"
    )
    previous = result.time_to_headers
    for number, arrival in enumerate(result.events[:max_rows], start=1):
        lines.append(
            f"    #{number:<3} at {arrival.at:8.3f} s  +{arrival.at - previous:.3f} s"
            f"  {arrival.size} bytes"
        )
        previous = arrival.at
    if len(result.events) > max_rows:
        lines.append(f"    ... {len(result.events) - max_rows} more")
    lines += [f"warning: {text}" for text in result.warnings]
    lines.append(f"verdict: {result.verdict.value}: {result.reason}")
    return lines


def worst(verdicts: Sequence[Verdict]) -> int:
    """The exit status for several probes: the highest of theirs."""
    return max((EXIT_STATUS[v] for v in verdicts), default=0)
