"""``stream-scaffold probe`` against real servers on 127.0.0.1: each setup gets its verdict.

The generated ``/events`` endpoint sends 4 events 0.3 s apart, then its end event. Through a
setup that streams they arrive one by one; through nginx with its streaming settings undone
they all arrive together at the end; through a proxy whose read timeout is shorter than a quiet
gap the connection is closed in the middle. Each verdict is drawn from the measured arrivals,
and each has its negative control among the others.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.stack import free_port
from scaffold_cli._cli import app

from .conftest import Servers

pytestmark = pytest.mark.deploy
runner = CliRunner()
EVENTS = "/events?count=4&interval=0.3"


def probe(*args: str) -> tuple[int, Any, str]:
    result = runner.invoke(app, ["probe", "--json", "--timeout", "20", *args])
    data = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, data, result.stderr


def events(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in data["arrivals"] if not a["heartbeat"]]


@pytest.mark.parametrize("via", ["direct", "nginx"])
def test_the_generated_project_is_live_directly_and_through_its_nginx(
    servers: Servers, via: str
) -> None:
    status, data, err = probe(servers.url(via, EVENTS))

    assert (status, data["verdict"], err) == (0, "live", "")
    assert data["status"] == 200
    assert data["stream_format"] == "sse"
    assert len(events(data)) == 5  # four ticks and the end event
    assert data["ended"] == "complete"
    assert data["warnings"] == []
    assert "no-store" in data["headers"]["cache-control"]
    # nginx acts on X-Accel-Buffering and does not pass it on.
    assert ("x-accel-buffering" in data["headers"]) == (via == "direct")


def test_nginx_with_its_streaming_settings_undone_is_buffered(servers: Servers) -> None:
    status, data, _ = probe(servers.url("undone", EVENTS))

    assert (status, data["verdict"]) == (1, "buffered")
    assert data["reason"].startswith("all 5 events arrived together at the end of the stream")
    assert len({e["at"] for e in events(data)}) == 1


def test_gzip_on_event_streams_stays_live_and_is_warned(servers: Servers) -> None:
    status, data, _ = probe(servers.url("gzip", EVENTS))

    assert (status, data["verdict"]) == (0, "live")
    assert data["headers"]["content-encoding"] == "gzip"
    assert len(events(data)) == 5
    assert [w for w in data["warnings"] if w.startswith("compressed (gzip)")]


def test_a_read_timeout_shorter_than_a_quiet_gap_is_cut(servers: Servers) -> None:
    # Events 2 s apart, heartbeats every 5 s, nginx waits 1 s: the first event, then the cut.
    status, data, _ = probe(servers.url("cut", "/events?count=3&interval=2"))

    assert (status, data["verdict"]) == (3, "cut")
    assert data["ended"] == "closed"
    assert len(events(data)) == 1
    assert "closed before the stream's end" in data["reason"]
    # Negative control: the same stream through the project's own nginx is live.
    status, data, _ = probe(servers.url("nginx", "/events?count=2&interval=2"))
    assert (status, data["verdict"]) == (0, "live")


@pytest.mark.parametrize(
    ("via", "verdict", "status"), [("nginx", "live", 0), ("undone", "buffered", 1)]
)
def test_each_format_gets_its_own_verdict(
    servers: Servers, via: str, verdict: str, status: int
) -> None:
    query = "?count=4&interval=0.3"
    urls = [servers.url(via, f"/{path}{query}") for path in ("events", "lines", "log")]
    exit_code, data, _ = probe(*urls)

    assert exit_code == status
    assert [d["stream_format"] for d in data] == ["sse", "ndjson", "text"]
    assert [d["verdict"] for d in data] == [verdict] * 3


def test_last_event_id_resumes_the_stream(servers: Servers) -> None:
    status, data, _ = probe("--last-event-id", "1", servers.url("direct", EVENTS))

    assert status == 0
    assert len(events(data)) == 3  # ids 2 and 3, then the end event


def test_headers_are_sent_and_an_error_status_is_not_a_stream(servers: Servers) -> None:
    status, data, err = probe("-H", "Last-Event-ID: junk", servers.url("direct", EVENTS))

    assert (status, data["verdict"], err) == (4, "not-a-stream", "")
    # The app's own JSON message says what was wrong with the request.
    assert data["reason"] == (
        "status 400 BAD REQUEST: Last-Event-ID must be an event number from 0 to 999"
    )
    assert (data["status"], data["ended"], data["arrivals"]) == (400, "unread", [])


@pytest.mark.parametrize(
    ("via", "reason"),
    [
        # gunicorn sends the page whole, with its length; nginx gzips it, chunked.
        ("direct", r"a text/html body of \d+ bytes, sent whole \(Content-Length\)"),
        ("nginx", r"a text/html document, not a stream"),
    ],
)
def test_a_page_is_not_a_stream(servers: Servers, via: str, reason: str) -> None:
    result = runner.invoke(app, ["probe", "--timeout", "20", servers.url(via, "/")])

    assert result.exit_code == 4
    verdict = result.stdout.splitlines()[-1]
    assert re.fullmatch(rf"verdict: not-a-stream: {reason}", verdict), verdict
    # No event rows and no stream warnings: the lines of a page are not events.
    assert "time to first event" not in result.stdout
    assert "warning" not in result.stdout


def test_http2_on_a_plain_http_listener_says_why_it_fails(servers: Servers) -> None:
    # The project's nginx speaks HTTP/1.1 on its plain listener: prior knowledge fails there.
    status, data, err = probe("--http2", servers.url("nginx", EVENTS))

    assert (status, data) == (2, None)
    assert len(err.splitlines()) == 1
    assert "--http2 on an http:// URL speaks HTTP/2 from the first byte" in err
    assert "probe its https:// address" in err


def test_the_event_limit_and_the_time_limit_bound_the_probe(servers: Servers) -> None:
    status, data, _ = probe("--events", "2", servers.url("direct", "/events?count=50&interval=0.1"))
    assert (status, data["ended"], len(events(data))) == (0, "limit", 2)

    result = runner.invoke(
        app,
        ["probe", "--json", "--timeout", "1", servers.url("direct", "/events?count=2&interval=3")],
    )
    data = json.loads(result.stdout)
    assert (data["ended"], len(events(data))) == ("limit", 1)
    assert data["duration"] < 10  # bounded by --timeout, not by the 3 s gap


def test_text_report_and_quiet_when_not_a_terminal(servers: Servers) -> None:
    result = runner.invoke(app, ["probe", servers.url("nginx", EVENTS)])

    assert result.exit_code == 0
    assert result.stderr == ""  # no progress display without a terminal
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"GET {servers.url('nginx', EVENTS)}  HTTP/1.1 200")
    assert "  content-type: text/event-stream; charset=utf-8" in lines
    assert any(line.startswith("  time to first event: ") for line in lines)
    assert lines[-1].startswith("verdict: live: 5 event(s) arrived one by one")


def test_http2_over_tls(servers: Servers) -> None:
    if servers.h2 is None:
        pytest.skip("openssl is not installed")
    url = servers.url("h2", EVENTS)
    status, data, _ = probe("--http2", "--insecure", url)
    assert (status, data["verdict"], data["http_version"]) == (0, "live", "HTTP/2")

    # Without --insecure the self-signed certificate is refused, in one line.
    status, data, err = probe("--http2", url)
    assert (status, data) == (2, None)
    assert "CERTIFICATE_VERIFY_FAILED" in err and len(err.splitlines()) == 1


def test_http2_in_the_clear_with_prior_knowledge(servers: Servers) -> None:
    status, data, _ = probe("--http2", servers.url("h2c", EVENTS))
    assert (status, data["verdict"], data["http_version"]) == (0, "live", "HTTP/2")
    # Without --http2 the client speaks HTTP/1.1, which this listener does not answer.
    status, data, err = probe("--timeout", "3", servers.url("h2c", EVENTS))
    assert (status, data) == (2, None)
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/x", "give an http:// or https:// URL"),
        ("http://127.0.0.1:{port}/events", "/events: All connection attempts failed"),
    ],
)
def test_an_unreachable_url_is_exit_two_in_one_line(url: str, message: str) -> None:
    status, data, err = probe(url.format(port=free_port()))  # nothing listens there
    assert (status, data) == (2, None)
    assert message in err and len(err.splitlines()) == 1


def test_the_installed_console_script(servers: Servers) -> None:
    script = Path(sys.executable).parent / "stream-scaffold"
    done = subprocess.run(
        [str(script), "probe", servers.url("nginx", EVENTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("verdict: live")
    assert done.stderr == ""


def test_a_progress_display_on_a_terminal(servers: Servers) -> None:
    script = Path(sys.executable).parent / "stream-scaffold"
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [str(script), "probe", servers.url("nginx", EVENTS)],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        close_fds=True,
    )
    os.close(secondary)
    transcript = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:  # the terminal closed with the process
                    break
                if not chunk:
                    break
                transcript += chunk
            elif process.poll() is not None:
                break
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
    text = transcript.decode(errors="replace")
    assert "waiting for the response headers" in text or "event(s) after" in text
    assert "verdict: live" in text
