"""Load generators on raw sockets, 127.0.0.1 only, every loop bounded in count and time.

* `one_stream`: one keep-alive connection, back-to-back requests, counts events (events/s).
* `first_events`: request to first event, and server timestamp to receive time.
* `loopback_floor`: the same one-way measurement between two bare processes.
* `hold_streams`: thousands of concurrent streams from several asyncio client processes,
  checking that every stream gets every event and measuring delivery latency.

Events are recognised by their JSON payload (``"seq":N`` and, when stamped, ``"t":NS``), so
the same client reads all three servers whatever their line endings.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .common import raise_open_files

HOST = "127.0.0.1"
EVENT = re.compile(rb'"seq":(\d+)[^\n\r]*?"t":(\d+)')
TERMINATOR = b"\r\n0\r\n\r\n"


def request_bytes(path: str, query: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path}?{query} HTTP/1.1", f"Host: {HOST}", "Accept: text/event-stream"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response(sock: socket.socket, buf: bytearray, deadline: float) -> int:
    """Read one chunked response on a keep-alive socket into *buf*; return its length.

    Reads go straight into the preallocated *buf*. When a read returns little, the client
    pauses 0.2 ms so that events pile up in the socket buffer: a client that wakes up for
    every 100-byte event would saturate its own core before the server does.
    """
    view = memoryview(buf)
    size = 0
    head_end = -1
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("response did not end in time")
        if size == len(buf):
            raise ValueError("response larger than the read buffer")
        got = sock.recv_into(view[size:])
        if not got:
            raise ConnectionError("closed mid-response")
        size += got
        if head_end < 0:
            head_end = buf.find(b"\r\n\r\n", 0, size)
            if head_end >= 0 and not buf.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(f"unexpected response: {bytes(buf[:200])!r}")
        if head_end >= 0 and buf.endswith(TERMINATOR, 0, size) and size > head_end + 4:
            return size
        if got < SMALL_READ:
            time.sleep(0.0002)


SMALL_READ = 32768


@dataclass
class StreamResult:
    events: int
    requests: int
    seconds: float
    client_cpu: float


def one_stream(
    port: int,
    path: str,
    query: str,
    *,
    requests: int,
    max_seconds: float = 60.0,
    headers: dict[str, str] | None = None,
) -> StreamResult:
    """Back-to-back requests on one keep-alive connection; count the events received."""
    req = request_bytes(path, query, headers)
    deadline = time.monotonic() + max_seconds
    events = done = 0
    buf = bytearray(16 << 20)
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cpu0, start = time.process_time(), time.perf_counter()
        for _ in range(requests):
            if time.monotonic() > deadline:
                break
            sock.sendall(req)
            size = _read_response(sock, buf, deadline)
            events += buf.count(b'"seq":', 0, size)
            done += 1
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    return StreamResult(events, done, seconds, cpu)


@dataclass
class FirstEvents:
    to_first_ns: list[int] = field(default_factory=list)  # request sent -> first event read
    from_stamp_ns: list[int] = field(default_factory=list)  # server stamp -> first event read


def first_events(
    port: int, path: str, query: str, *, samples: int, max_seconds: float = 60.0
) -> FirstEvents:
    """Open a stream, note when its first event arrives, read it to the end; *samples* times.

    Each sample uses a new connection, as a browser's EventSource does.
    """
    req = request_bytes(path, query)
    out = FirstEvents()
    deadline = time.monotonic() + max_seconds
    for _ in range(samples):
        if time.monotonic() > deadline:
            break
        with socket.create_connection((HOST, port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sent = time.time_ns()
            sock.sendall(req)
            buf = b""
            while True:
                data = sock.recv(65536)
                now = time.time_ns()
                if not data:
                    raise ConnectionError("closed before the first event")
                buf += data
                match = EVENT.search(buf)
                if match:
                    out.to_first_ns.append(now - sent)
                    out.from_stamp_ns.append(now - int(match[2]))
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("no first event in time")
            while not buf.endswith(TERMINATOR) and time.monotonic() < deadline:
                data = sock.recv(65536)
                if not data:
                    break
                buf = (buf + data)[-16:]
    return out


_FLOOR_SERVER = r"""
import socket, sys, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept(); conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
conn.settimeout(30)
while conn.recv(16):
    conn.sendall(b'"seq":0,"t":%d\n' % time.time_ns())
"""


def loopback_floor(samples: int = 500) -> list[int]:
    """One-way latency (ns) between two processes on 127.0.0.1, measured like the events:
    a timestamp taken just before the other process writes, against the receive time here."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _FLOOR_SERVER], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        out: list[int] = []
        with socket.create_connection((HOST, port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(samples):
                sock.sendall(b"x")
                data = sock.recv(64)
                now = time.time_ns()
                match = EVENT.search(data)
                if match:
                    out.append(now - int(match[2]))
                time.sleep(0.001)
        return out
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(5)


# ------------------------------------------------------------ many streams
class _Stream(asyncio.Protocol):
    __slots__ = ("buf", "client", "done", "first", "next_seq", "ok", "received", "transport")

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.buf = b""
        self.received = 0
        self.next_seq = 0
        self.ok = True
        self.first = False
        self.done = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.client.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        buf = self.buf + data
        end = 0
        lat = self.client.latencies
        for match in EVENT.finditer(buf):
            seq = int(match[1])
            if seq != self.next_seq:
                self.ok = False
            self.next_seq = seq + 1
            self.received += 1
            lat.append(now - int(match[2]))
            end = match.end()
        if self.received and not self.first:
            self.first = True
            self.client.first_seen()
        if not self.done and b"event: end" in buf:
            self.done = True
            self.client.finished()
            if self.transport is not None:
                self.transport.close()
        self.buf = buf[end:][-2048:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done:
            self.client.finished()
            self.done = True


class _Client:
    def __init__(self, request: bytes, streams: int) -> None:
        self.request = request
        self.latencies: list[int] = []
        self.pending_first = streams
        self.pending_done = streams
        self.all_first = asyncio.Event()
        self.all_done = asyncio.Event()

    def first_seen(self) -> None:
        self.pending_first -= 1
        if self.pending_first <= 0:
            self.all_first.set()

    def finished(self) -> None:
        self.pending_done -= 1
        if self.pending_done <= 0:
            self.all_done.set()


async def _hold(
    port: int, request: bytes, n: int, max_seconds: float, batch: int, conn: Any
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    client = _Client(request, n)
    streams: list[_Stream] = []
    failed = 0
    start = time.monotonic()
    for i in range(0, n, batch):
        tasks = [
            loop.create_connection(lambda: _Stream(client), HOST, port)
            for _ in range(min(batch, n - i))
        ]
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, BaseException):
                failed += 1
                client.first_seen()
                client.finished()
            else:
                streams.append(result[1])
        await asyncio.sleep(0.02)
    connected = time.monotonic() - start
    remaining = max(1.0, max_seconds - (time.monotonic() - start))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.all_first.wait(), remaining)
    conn.send(("ready", time.monotonic() - start, sum(s.received for s in streams)))
    remaining = max(1.0, max_seconds - (time.monotonic() - start))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.all_done.wait(), remaining)
    for stream in streams:
        if stream.transport is not None:
            stream.transport.close()
    return {
        "streams": n,
        "failed": failed,
        "connect_seconds": connected,
        "received": sum(s.received for s in streams),
        "complete": sum(1 for s in streams if s.done and s.ok),
        "out_of_order": sum(1 for s in streams if not s.ok),
        "latencies": client.latencies,
    }


def _hold_process(
    port: int, request: bytes, n: int, max_seconds: float, batch: int, conn: Any
) -> None:
    raise_open_files(n + 1024)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    cpu0, wall0 = time.process_time(), time.monotonic()
    try:
        result = asyncio.run(_hold(port, request, n, max_seconds, batch, conn))
    except BaseException as error:  # report, never hang the parent
        result = {
            "error": repr(error),
            "streams": n,
            "failed": n,
            "received": 0,
            "complete": 0,
            "out_of_order": 0,
            "latencies": [],
            "connect_seconds": 0.0,
        }
        conn.send(("ready", 0.0, 0))
    result["cpu"] = time.process_time() - cpu0
    result["wall"] = time.monotonic() - wall0
    conn.send(("done", result))
    conn.close()


@dataclass
class HoldResult:
    streams: int
    expected_events: int
    received: int
    complete_streams: int
    failed_connects: int
    out_of_order: int
    latencies_ns: list[int]
    client_cpu: float
    client_wall: float
    ready_seconds: float
    received_at_ready: int
    errors: list[str]

    @property
    def lost(self) -> int:
        return self.expected_events - self.received


def hold_streams(
    port: int,
    path: str,
    query: str,
    *,
    streams: int,
    events_per_stream: int,
    max_seconds: float,
    processes: int = 2,
    batch: int = 200,
    on_ready: Any = None,
) -> HoldResult:
    """Hold *streams* concurrent streams from *processes* client processes.

    *on_ready* is called (in this process) once every stream has received its first event:
    the moment to sample the server's memory.
    """
    raise_open_files(streams + 1024)
    request = request_bytes(path, query)
    ctx = mp.get_context("fork")
    share = [streams // processes + (1 if i < streams % processes else 0) for i in range(processes)]
    pipes, procs = [], []
    for n in share:
        if n == 0:
            continue
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_hold_process, args=(port, request, n, max_seconds, batch, child), daemon=True
        )
        proc.start()
        child.close()
        pipes.append(parent)
        procs.append(proc)
    results: list[dict[str, Any]] = []
    ready_at = 0.0
    at_ready = 0
    deadline = time.monotonic() + max_seconds + 30
    try:
        for pipe in pipes:
            if pipe.poll(max(0.1, deadline - time.monotonic())):
                _, ready_at_i, received_i = pipe.recv()
                ready_at = max(ready_at, ready_at_i)
                at_ready += received_i
        if on_ready is not None:
            on_ready()
        for pipe in pipes:
            if pipe.poll(max(0.1, deadline - time.monotonic())):
                _, result = pipe.recv()
                results.append(result)
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
    latencies = [x for r in results for x in r["latencies"]]
    return HoldResult(
        streams=streams,
        expected_events=streams * events_per_stream,
        received=sum(r["received"] for r in results),
        complete_streams=sum(r["complete"] for r in results),
        failed_connects=sum(r["failed"] for r in results)
        + streams
        - sum(r["streams"] for r in results),
        out_of_order=sum(r["out_of_order"] for r in results),
        latencies_ns=latencies,
        client_cpu=sum(r["cpu"] for r in results),
        client_wall=max((r["wall"] for r in results), default=0.0),
        ready_seconds=ready_at,
        received_at_ready=at_ready,
        errors=[r["error"] for r in results if "error" in r],
    )


def cpu_count() -> int:
    return os.cpu_count() or 1
