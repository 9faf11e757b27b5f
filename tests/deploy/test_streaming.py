"""The generated deployment streams without buffering: gthread and gevent, direct and through
each generated proxy config (nginx, Caddy, Apache httpd), in every format.

The probe app (probe_app.py) produces each record only after the test has confirmed the
previous one, so "confirmed" means every layer passed every chunk on by itself; a buffering
layer makes the very same test end "unconfirmed". Each proxy's negative control (its config
with the stream-keeping undone, see conftest.BUFFERING_CONTROLS) proves that it would.
"""

from __future__ import annotations

import itertools
import time

import pytest

from harness.client import Stream, run_probe
from harness.stack import DEFAULT_ENDPOINTS

from .conftest import FRONTS, PROXIES, VIAS, Stack, require_proxy, requires_nginx

pytestmark = [pytest.mark.deploy, requires_nginx]

FORMATS = ("sse", "ndjson", "text")
MEDIA_TYPES = {"sse": "text/event-stream", "ndjson": "application/x-ndjson", "text": "text/plain"}


@pytest.mark.parametrize("via", FRONTS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_chunk_reaches_the_client_before_the_next_is_produced(
    stack: Stack, via: str, fmt: str, record_property: pytest.RecordProperty
) -> None:
    # The client accepts gzip, as browsers do: no proxy may compress (and so hold) a stream.
    result = run_probe(stack.port(via), fmt, stack.token(), stack.confirm_dir, count=4)

    assert result.status == 200
    assert result.headers["Content-Type"].startswith(MEDIA_TYPES[fmt])
    assert "Content-Encoding" not in result.headers
    assert [r.get("seq") for r in result.received] == [0, 1, 2, 3, None]
    assert result.outcome == "confirmed"
    record_property("first_record_seconds", result.first_record_seconds)


@pytest.mark.parametrize("proxy", PROXIES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_same_probe_fails_through_each_proxy_with_its_stream_keeping_undone(
    stack: Stack, proxy: str, fmt: str
) -> None:
    """nginx with its defaults, Caddy compressing streams, Apache holding output: without the
    app's X-Accel-Buffering header too, each holds record 0 back until the stream ends."""
    require_proxy(proxy)
    result = run_probe(
        stack.controls[proxy].port,
        fmt,
        stack.token(),
        stack.confirm_dir,
        query="&wait=1&accel=0",
    )

    assert result.status == 200
    assert result.outcome == "unconfirmed"
    assert [r.get("seq") for r in result.received] == [0, None]


@pytest.mark.parametrize("proxy", PROXIES)
def test_each_proxy_still_compresses_ordinary_responses(stack: Stack, proxy: str) -> None:
    with Stream(
        stack.port(proxy), "/static/demo.js", headers={"Accept-Encoding": "gzip"}
    ) as script:
        assert script.status == 200
        assert script.headers["Content-Encoding"] == "gzip"
        body = "\n".join(script.lines())
    assert "EventSource" in body


@pytest.mark.parametrize(
    ("nginx", "accel", "outcome"),
    [
        # The generated stream location alone: proxy_buffering off, HTTP/1.1 upstream.
        ("generated", "0", "confirmed"),
        # The app's header alone, behind nginx's proxy defaults.
        ("defaults", "1", "confirmed"),
        # Negative control: neither, and nginx holds the records back.
        ("defaults", "0", "unconfirmed"),
    ],
)
def test_either_the_location_or_the_header_is_enough_and_without_both_nginx_buffers(
    stack: Stack, nginx: str, accel: str, outcome: str
) -> None:
    proxy = stack.proxy if nginx == "generated" else stack.naive
    # A short wait in the app: in the negative control it runs out, by design.
    result = run_probe(
        proxy.port, "sse", stack.token(), stack.confirm_dir, query=f"&wait=1.5&accel={accel}"
    )

    assert result.status == 200
    assert "X-Accel-Buffering" not in result.headers, "nginx must not pass X-Accel-* on"
    assert result.outcome == outcome
    if outcome == "unconfirmed":
        # Record 0 was produced at once but reached the client only with the end of the stream.
        assert [r.get("seq") for r in result.received] == [0, None]


@pytest.mark.parametrize("via", VIAS)
def test_time_to_first_event_of_the_generated_endpoint(
    stack: Stack, via: str, record_property: pytest.RecordProperty
) -> None:
    # The second event is 5 s away, so the first one arriving well before proves it was
    # not held back with the rest.
    with Stream(stack.port(via), "/events?count=2&interval=5") as stream:
        first = next(stream.records("sse"))
        elapsed = time.monotonic() - stream.started
    assert first["id"] == "0"
    assert elapsed < 2.5
    record_property("time_to_first_event_seconds", elapsed)


def test_session_cookie_and_vary_come_through_nginx(stack: Stack) -> None:
    with Stream(stack.proxy.port, "/events?count=1&interval=0") as first:
        assert first.headers["Vary"] == "Cookie"
        cookie = first.headers["Set-Cookie"]
        assert cookie.startswith("session=")
        assert "HttpOnly" in cookie
        events = list(first.records("sse"))
    assert events[0]["json"]["streams_opened"] == 1
    assert events[-1]["event"] == "end"

    session = cookie.split(";", 1)[0]
    with Stream(
        stack.proxy.port, "/events?count=1&interval=0", headers={"Cookie": session}
    ) as again:
        assert again.headers["Vary"] == "Cookie"
        events = list(again.records("sse"))
    # Written in the view of the first request, read in the view of the second.
    assert events[0]["json"]["streams_opened"] == 2


@pytest.mark.parametrize(
    ("path", "fmt"), [("/events", "sse"), ("/lines", "ndjson"), ("/log", "text")]
)
def test_generated_endpoints_stream_line_by_line_through_nginx(
    stack: Stack, path: str, fmt: str
) -> None:
    arrivals: list[tuple[float, str]] = []
    with Stream(stack.proxy.port, f"{path}?count=4&interval=0.3&topic=nginx") as stream:
        assert stream.headers["Content-Type"].startswith(MEDIA_TYPES[fmt])
        assert stream.headers["Cache-Control"] == "no-store, no-transform"
        for line in stream.lines():
            if line and not line.startswith(":"):
                arrivals.append((time.monotonic(), line))
    content = [line for _, line in arrivals]
    if fmt == "sse":
        assert [line for line in content if line.startswith("id:")] == [
            f"id: {n}" for n in range(4)
        ]
        assert content[-2:] == ["event: end", "data:"]
    elif fmt == "ndjson":
        assert [line.count('"seq":') for line in content] == [1, 1, 1, 1]
        assert all('"topic":"nginx"' in line for line in content)
    else:
        assert content == [f"nginx {n}/4" for n in range(1, 5)]
    # Four records 0.3 s apart arrive spread out, not in one piece at the end.
    data_times = [t for t, line in arrivals if not line.startswith(("id:", "retry:", "event:"))]
    assert data_times[-1] - data_times[0] > 0.6


@pytest.mark.parametrize("via", FRONTS)
@pytest.mark.parametrize(
    ("name", "path"),
    [(e["name"], e["path"]) for e in DEFAULT_ENDPOINTS],
    ids=[e["name"] for e in DEFAULT_ENDPOINTS],
)
def test_a_client_that_leaves_ends_the_generator_and_its_cleanup_runs(
    stack: Stack, via: str, name: str, path: str
) -> None:
    count = 1000  # 50 s of events: the stream ends only because the client leaves
    since = len(stack.app.log())
    with Stream(stack.port(via), f"{path}?count={count}&interval=0.05") as stream:
        # Eight lines: for SSE the retry hint and at least three whole events (two lines
        # each), otherwise eight events; the server came back for more after each of them.
        received = [line for line in itertools.islice(filter(None, stream.lines()), 8)]
    assert len(received) == 8

    # This stream's end. A stream of /events another test left (it asked for 2 events) may
    # end meanwhile: lines of fewer than 3 events are passed over.
    match = stack.app.wait_for_log(
        rf"\[INFO\] stream ended: endpoint={name} reason=client_gone \S+ events=(?![0-2] )(\d+) ",
        since=since,
        timeout=10,
    )
    assert 3 <= int(match.group(1)) < count
