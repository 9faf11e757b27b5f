"""Small HTTP stream clients for the tests and benchmarks: one blocking, one for many streams."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import threading
import time
import zlib
from collections.abc import Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

HOST = "127.0.0.1"
T = TypeVar("T")


class Stream:
    """One streamed ``GET`` over a fresh connection; the body is read line by line as it comes.

    Every read is bounded by *timeout* seconds of silence (a socket timeout). A gzip-encoded
    body (ask for one with an ``Accept-Encoding: gzip`` header) is decoded as it arrives, so
    a proxy that compresses a stream is seen exactly as a browser sees it.
    """

    def __init__(
        self, port: int, path: str, *, headers: Mapping[str, str] | None = None, timeout: float = 10
    ) -> None:
        self.started = time.monotonic()
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.conn.request("GET", path, headers=dict(headers or {}))
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = self.response.headers

    def lines(self) -> Iterator[str]:
        """Body lines without their line end, as each arrives; stops at the end of the body."""
        if self.headers.get("Content-Encoding") != "gzip":
            while line := self.response.readline():
                yield line.decode().rstrip("\r\n")
            return
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = b""
        while chunk := self.response.read1(65536):
            *complete, pending = (pending + decoder.decompress(chunk)).split(b"\n")
            yield from (line.decode().rstrip("\r") for line in complete)
        if rest := pending + decoder.flush():
            yield rest.decode().rstrip("\r")

    def records(self, fmt: str) -> Iterator[dict[str, Any]]:
        """Parsed records: SSE events as field dicts, NDJSON objects, ``k=v`` text lines.

        Heartbeats (SSE comments, blank lines) are skipped.
        """
        if fmt == "sse":
            yield from parse_sse(self.lines())
        elif fmt == "ndjson":
            yield from (json.loads(line) for line in self.lines() if line.strip())
        else:
            for line in self.lines():
                if line.strip():
                    yield parse_text_record(line)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class EventSourceClient:
    """Reads an SSE stream the way EventSource does: after each end it waits ``retry`` and
    reconnects, sending the last id it saw as ``Last-Event-ID`` (unless told not to).

    It stops at ``event: end``, or once a message's data is *until* (a channel stream has no
    end of its own). Run it on a thread; what went wrong is in ``error``.
    """

    port: int
    path: str
    send_last_event_id: bool = True
    until: str | None = None
    # (the last event id, data) of each message, in the order received.
    received: list[tuple[str | None, str]] = field(default_factory=list)
    connections: int = 0
    # Set once the first connection is answered: a channel stream is subscribed by then.
    opened: threading.Event = field(default_factory=threading.Event)
    hints: list[str] = field(default_factory=list)
    finished: bool = False
    error: BaseException | None = None

    @property
    def ids(self) -> list[int]:
        """The ids of the messages received, for a stream whose ids are numbers (-1: none)."""
        return [int(last_id or "-1") for last_id, _ in self.received]

    @property
    def data(self) -> list[str]:
        return [data for _, data in self.received]

    def run(self) -> None:
        try:
            self._run()
        except BaseException as error:  # reported by the test
            self.error = error

    def _run(self) -> None:
        last_id: str | None = None
        retry_ms = 3000
        deadline = time.monotonic() + 60
        while not self.finished and time.monotonic() < deadline:
            headers = {}
            if last_id is not None and self.send_last_event_id:
                headers["Last-Event-ID"] = last_id
            conn = http.client.HTTPConnection(HOST, self.port, timeout=20)
            self.connections += 1
            try:
                conn.request("GET", self.path, headers=headers)
                response = conn.getresponse()
                if response.status == 204:
                    return
                assert response.status == 200, response.status
                self.opened.set()
                with contextlib.suppress(http.client.IncompleteRead, ConnectionError):
                    last_id, retry_ms = self._read(response, last_id, retry_ms)
            finally:
                conn.close()
            if not self.finished:
                time.sleep(retry_ms / 1000)

    def _read(
        self, response: http.client.HTTPResponse, last_id: str | None, retry_ms: int
    ) -> tuple[str | None, int]:
        """Read one connection's messages; return the last id and retry hint seen so far."""
        fields: dict[str, str] = {}
        while not self.finished and (line_bytes := response.readline()):
            line = line_bytes.decode().rstrip("\r\n")
            if line.startswith(":"):
                if "reconnect" in line:
                    self.hints.append(line)
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                if name == "retry":
                    retry_ms = int(fields.pop("retry"))
            else:
                last_id = fields.get("id", last_id)
                if fields.get("event") == "end":
                    self.finished = True
                elif "data" in fields:
                    self.received.append((last_id, fields["data"]))
                    self.finished = fields["data"] == self.until
                fields = {}
        return last_id, retry_ms


def events_and_heartbeats(
    port: int, path: str = "/events?count=2&interval=2"
) -> tuple[list[str], list[str]]:
    """An SSE stream's ``id:`` and ``event:`` lines and its heartbeat comments, to its end.

    A stream that a proxy cuts ends early, without ``event: end``, possibly in the middle of
    the chunked body.
    """
    events: list[str] = []
    beats: list[str] = []
    with (
        Stream(port, path, timeout=10) as stream,
        contextlib.suppress(http.client.IncompleteRead),
    ):
        for line in stream.lines():
            if line.startswith(":"):
                beats.append(line)
            elif line.startswith(("id:", "event:")):
                events.append(line)
    return events, beats


def parse_sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Events as dicts of their fields (``data`` joined, JSON decoded when it parses).

    Like EventSource, only blocks with data are events: a block that only sets ``retry:``
    (or only ``id:``) dispatches nothing.
    """
    event: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if "data" in event:
                if "data" in event:
                    with contextlib.suppress(ValueError):
                        event["json"] = json.loads(event["data"])
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data" and "data" in event:
                event["data"] += "\n" + value
            else:
                event[name] = value


def parse_text_record(line: str) -> dict[str, Any]:
    """The probe app's text records: ``key=value`` words."""
    record: dict[str, Any] = {}
    for word in line.split():
        key, _, value = word.partition("=")
        record[key] = int(value) if value.isdigit() else value
    return record


def probe_payload(fmt: str, record: dict[str, Any]) -> dict[str, Any]:
    """The probe app's record inside whatever framing *fmt* uses."""
    return record["json"] if fmt == "sse" else record


@dataclass
class ProbeResult:
    status: int
    headers: http.client.HTTPMessage
    received: list[dict[str, Any]] = field(default_factory=list)
    first_record_seconds: float | None = None

    @property
    def outcome(self) -> str | None:
        last = self.received[-1] if self.received else {}
        return last.get("status")


def run_probe(
    port: int, fmt: str, token: str, confirm_dir: Path, *, count: int = 3, query: str = ""
) -> ProbeResult:
    """Read the probe stream, confirming each record the moment it arrives.

    The app produces record n+1 only after the confirmation of record n, so on a stack that
    passes every chunk on at once the outcome is ``"confirmed"``; anything that holds a chunk
    back ends the stream ``"unconfirmed"``. Like a browser, the client accepts gzip.
    """
    path = f"/probe/{fmt}?token={token}&count={count}{query}"
    with Stream(port, path, headers={"Accept-Encoding": "gzip"}) as stream:
        result = ProbeResult(stream.status, stream.headers)
        for record in stream.records(fmt):
            payload = probe_payload(fmt, record)
            if result.first_record_seconds is None:
                result.first_record_seconds = time.monotonic() - stream.started
            result.received.append(payload)
            if "seq" in payload:
                (confirm_dir / f"{token}.{payload['seq']}").touch()
    return result


async def _many_streams(
    port: int,
    path: str,
    *,
    clients: int,
    on_all: Mapping[bytes, Any],
    end: bytes,
    timeout: float,
) -> list[bytes]:
    """Open *clients* connections at once and read each body to *end* (see many_streams)."""
    waiting = {marker: asyncio.Event() for marker in on_all}
    counts = dict.fromkeys(on_all, 0)
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()

    async def one() -> bytes:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(request)
            await writer.drain()
            data = b""
            seen: set[bytes] = set()
            while end not in data:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
                for marker, everyone_has_it in waiting.items():
                    if marker not in seen and marker in data:
                        seen.add(marker)
                        counts[marker] += 1
                        if counts[marker] == clients:
                            everyone_has_it.set()
            return data
        finally:
            writer.close()

    async def barrier() -> None:
        for marker, action in on_all.items():
            await waiting[marker].wait()
            action()

    tasks = [asyncio.ensure_future(one()) for _ in range(clients)]
    results = await asyncio.wait_for(
        asyncio.gather(asyncio.gather(*tasks), barrier()), timeout=timeout
    )
    return list(results[0])


def many_streams(
    port: int,
    path: str,
    *,
    clients: int,
    on_all: Mapping[bytes, Any],
    end: bytes,
    timeout: float = 60,
) -> list[bytes]:
    """Open *clients* streams to *path* at once (asyncio, one thread) and return each raw body.

    *on_all* maps a byte marker to a callback run once every client has received that
    marker: with the probe app this confirms a record only when all clients hold it, so all
    streams are provably open together. Each read stops at *end*; everything is bounded by
    *timeout* seconds.
    """
    return run_async(
        _many_streams(port, path, clients=clients, on_all=on_all, end=end, timeout=timeout),
        timeout=timeout + 10,
    )


def run_async(main: Coroutine[Any, Any, T], *, timeout: float) -> T:
    """``asyncio.run(main)`` in a thread of its own.

    Playwright's sync API keeps an event loop running in the test thread while a browser is
    open, and ``asyncio.run`` refuses to start inside a running loop.
    """
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, main).result(timeout=timeout)


async def open_stream(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Send ``GET path`` on a new connection; the caller reads the raw response."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def read_until(reader: asyncio.StreamReader, marker: bytes, data: bytes = b"") -> bytes:
    """Read the raw response until *marker* has arrived (or the connection ends)."""
    while marker not in data:
        chunk = await reader.read(65536)
        if not chunk:
            break
        data += chunk
    return data
