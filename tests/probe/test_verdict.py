"""The probe's timing model on recorded arrivals: how each verdict is drawn, and framing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from scaffold_cli._probe import (
    Arrival,
    ProbeOptions,
    ProbeResult,
    Verdict,
    _Framer,
    _not_a_stream,
    judge,
    probe,
    stream_format,
)


def result(
    times: list[float],
    *,
    ended: str = "complete",
    duration: float | None = None,
    beats: tuple[float, ...] = (),
) -> ProbeResult:
    arrivals = [Arrival(t, 10) for t in times] + [Arrival(t, 2, heartbeat=True) for t in beats]
    arrivals.sort(key=lambda a: a.at)
    probe = ProbeResult(
        url="http://127.0.0.1/x",
        http_version="HTTP/1.1",
        status=200,
        headers={"content-type": "text/event-stream", "cache-control": "no-cache"},
        stream_format="sse",
        time_to_headers=0.01,
        arrivals=arrivals,
        ended=ended,
        duration=duration if duration is not None else (max(times, default=0.0) + 0.001),
        error="peer closed connection" if ended == "closed" else None,
    )
    judge(probe, ProbeOptions(timeout=5))
    return probe


@pytest.mark.parametrize(
    ("times", "verdict"),
    [
        ([0.01, 0.21, 0.41, 0.61, 0.61], Verdict.LIVE),  # spread out, end marker right after
        ([0.0, 0.0, 0.0, 0.0], Verdict.LIVE),  # sent together at once: nothing held back
        ([1.0, 1.0, 1.0, 1.0, 1.0], Verdict.BUFFERED),  # all at the end
        ([0.01, 2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0], Verdict.BUFFERED),  # bursts after silences
        ([0.01, 2.0, 2.0, 4.0, 4.01, 6.0], Verdict.LIVE),  # pairs are not bursts
    ],
)
def test_verdict_from_arrivals(times: list[float], verdict: Verdict) -> None:
    assert result(times).verdict is verdict


def test_a_connection_closed_mid_body_is_cut() -> None:
    probe = result([0.01], ended="closed", duration=1.02)
    assert probe.verdict is Verdict.CUT
    assert probe.reason.startswith("the connection closed before the stream's end after 1 event")


def test_no_event_in_time_is_buffered_and_an_empty_body_is_cut() -> None:
    waiting = result([], ended="limit", duration=5.0, beats=(1.0, 2.0))
    assert waiting.verdict is Verdict.BUFFERED
    assert "(2 heartbeat(s) did)" in waiting.reason
    assert result([], ended="complete").verdict is Verdict.CUT


def test_framing_across_chunks_with_every_line_ending() -> None:
    framer = _Framer("sse")
    records = framer.feed(": hi\r\ndata: a\r")  # a CR at the end may be half of a CRLF
    records += framer.feed("\n\r\ndata: b\rdata: c\n\nretry: 3000\nid: 7\n\ndata\n\n")
    # A comment, two events, a block without data (not dispatched), an event with empty data.
    assert [heartbeat for _, heartbeat in records] == [True, False, False, True, False]
    lines = _Framer("ndjson")
    assert [hb for _, hb in lines.feed('{"a":1}\n\n{"b"')] == [False, True]
    assert [hb for _, hb in lines.feed(":2}\n")] == [False]


@pytest.mark.parametrize(
    ("content_type", "fmt"),
    [
        ("text/event-stream; charset=utf-8", "sse"),
        ("application/x-ndjson", "ndjson"),
        ("text/plain", "text"),
        ("application/octet-stream", "chunks"),
    ],
)
def test_stream_format_from_the_content_type(content_type: str, fmt: str) -> None:
    assert stream_format(content_type) == fmt


def test_warnings_for_compression_missing_headers_and_unframed_bodies() -> None:
    probe = result([0.1, 0.4, 0.7])
    probe.headers = {"content-type": "application/octet-stream", "content-encoding": "br"}
    probe.stream_format = "chunks"
    judge(probe, ProbeOptions(timeout=5))
    starts = ("compressed (br)", "no Cache-Control", "no chunked framing", "Content-Type 'appl")
    assert len(probe.warnings) == len(starts)
    assert all(w.startswith(s) for w, s in zip(probe.warnings, starts, strict=True))
    framed = result([0.1, 0.4, 0.7])
    framed.headers["transfer-encoding"] = "chunked"
    judge(framed, ProbeOptions(timeout=5))
    assert framed.warnings == []


class _Burst(BaseHTTPRequestHandler):
    """27 SSE events in one chunk: a client reads them all at once."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = "".join(f"id: {n}\ndata: {n}\n\n" for n in range(27)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def burst_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Burst)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/burst"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("limit", [20, 5])
def test_the_event_limit_holds_when_many_events_come_in_one_read(
    burst_url: str, limit: int
) -> None:
    result = probe(burst_url, ProbeOptions(timeout=10, max_events=limit))
    assert (len(result.events), result.ended) == (limit, "limit")


@pytest.mark.parametrize(
    ("status", "headers", "why"),
    [
        (200, {"content-type": "text/event-stream"}, None),
        (200, {"content-type": "application/x-ndjson"}, None),
        (503, {"content-type": "text/event-stream"}, "status 503 Service Unavailable"),
        (204, {}, "status 204 No Content: no body (a 204 is how a server tells EventSource"),
        (200, {"content-type": "text/plain", "content-length": "12"}, "a text/plain body of 12"),
        (200, {"content-type": "application/json"}, "a application/json document, not a stream"),
    ],
)
def test_what_is_not_a_stream(status: int, headers: dict[str, str], why: str | None) -> None:
    found = _not_a_stream(httpx.Response(status, headers=headers))
    assert found == why if why is None else (found or "").startswith(why)
